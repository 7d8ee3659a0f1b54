//! The backend extension that carries memory-efficient attention into burn's dispatch, and its
//! hand-written autodiff step.
//!
//! burn's autodiff runs its attention op as the textbook composition of differentiable ops
//! (`attention_fallback`), which keeps every `[tq, tk]` weight matrix for the backward pass. This
//! extension registers one graph node for the whole blocked computation instead, whose state is
//! the inputs, the output and the per-row logsumexp: O(N·d), never O(N²).
//!
//! This file names backends (burn's extension macro needs the list), which elsewhere only
//! engram-tensor does; a backend not listed here (wgpu's `Cube`) is never sent to the extension:
//! [`super::supported`] turns it away first.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, backend_extension};

use super::kernel::{self, FlashSpec};

/// Memory-efficient attention as a backend operation.
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait FlashBackend: Backend {
    /// Blocked attention over `[b, h, t, d]` queries, keys and values (as many key as query
    /// heads); `padding` is `[b, 1, 1, tk]`, `true` at padded keys.
    fn flash_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        padding: BoolTensor<Self>,
        spec: FlashSpec,
    ) -> FloatTensor<Self> {
        Self::flash_attention_forward(q, k, v, padding, spec).0
    }

    /// The output and the per-row logsumexp `[b, h, tq, 1]` that the backward step reads.
    fn flash_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        padding: BoolTensor<Self>,
        spec: FlashSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        kernel::forward::<Self>(q, k, v, padding, &spec)
    }

    /// Gradients of the output with respect to `q`, `k` and `v`, given the upstream gradient
    /// `grad` and the forward's `output` and logsumexp `lse`.
    #[allow(clippy::too_many_arguments)]
    fn flash_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        padding: BoolTensor<Self>,
        output: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: FlashSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [dq, dk, dv] = kernel::backward::<Self>(q, k, v, padding, output, lse, grad, &spec);
        (dq, dk, dv)
    }
}

/// flex in f32 runs the host kernel ([`super::host`]); other dtypes the composed path.
#[cfg(feature = "flex")]
impl FlashBackend for burn::backend::Flex {
    fn flash_attention_forward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        padding: BoolTensor<Self>,
        spec: FlashSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match super::flex::forward(&q, &k, &v, &padding, &spec) {
            Some(result) => result,
            None => kernel::forward::<Self>(q, k, v, padding, &spec),
        }
    }

    fn flash_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        padding: BoolTensor<Self>,
        output: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        spec: FlashSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let host = super::flex::backward(&q, &k, &v, &padding, &output, &lse, &grad, &spec);
        let [dq, dk, dv] = match host {
            Some(grads) => grads,
            None => kernel::backward::<Self>(q, k, v, padding, output, lse, grad, &spec),
        };
        (dq, dk, dv)
    }
}

#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl FlashBackend for burn::backend::NdArray {}

/// The backward step: recomputes each tile's weights from the saved logsumexp.
#[derive(Debug)]
struct FlashBackward;

impl<B: FlashBackend> Backward<B, 3> for FlashBackward {
    /// Queries, keys, values, key padding, output, logsumexp and the settings.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        BoolTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FlashSpec,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (q, k, v, padding, output, lse, spec) = ops.state;
        let (dq, dk, dv) = B::flash_attention_backward(q, k, v, padding, output, lse, grad, spec);
        for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: FlashBackend, C: CheckpointStrategy> FlashBackend for Autodiff<B, C> {
    fn flash_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        padding: BoolTensor<Self>,
        spec: FlashSpec,
    ) -> FloatTensor<Self> {
        match FlashBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful()
        {
            OpsKind::Tracked(prep) => {
                let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                let (output, lse) = B::flash_attention_forward(
                    q.clone(),
                    k.clone(),
                    v.clone(),
                    padding.clone(),
                    spec,
                );
                prep.finish((q, k, v, padding, output.clone(), lse, spec), output)
            }
            OpsKind::UnTracked(prep) => {
                let (q, k, v) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                prep.finish(B::flash_attention(q, k, v, padding, spec))
            }
        }
    }
}
