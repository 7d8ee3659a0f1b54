//! Linear layers on flex: burn-nn's `Linear::forward` with engram's kernels, forward and
//! backward, for f32 on the flex device (plain or autodiff).
//!
//! - A decoding step multiplies one or a batch of tokens (1 to [`DECODE_ROWS`] rows) by every
//!   weight matrix of the model; gemm streams the weight poorly at that shape and runs one
//!   thread, so these rows take a host kernel that streams each weight once (see [`kernel`]).
//! - Larger inputs call gemm (flex's own matmul crate) on the tensors' memory, with the bias
//!   written into the output first and gemm accumulating onto it. flex's matmul allocates its
//!   output as zeroed bytes and then copies them into an aligned buffer, and adds the bias in a
//!   separate single-threaded pass; in a training step of the benchmark classifier those copies
//!   and passes were about a tenth of the CPU samples.
//! - On an autodiff device the layer is one graph node whose backward is two gemm calls (input
//!   and weight gradients, each only when needed) and a parallel column sum for the bias.
//!
//! Other backends and dtypes take burn's `linear`; operands with negative strides are copied
//! before gemm reads them.

#[cfg(any(feature = "flex", test))]
mod kernel;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor};

/// Inputs of at most this many rows (the product of all but the last dim) take the decoding
/// kernel.
pub const DECODE_ROWS: usize = 32;

/// The linear layer as backend operations.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait LinearBackend: Backend {
    /// `x · weight` for `x` `[m, k]` and `weight` `[k, n]`.
    fn linear_forward(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x · weight + bias`, `bias` `[n]`. (A separate method: the extension macro does not
    /// route an optional tensor.)
    fn linear_forward_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `grad · weightᵀ`, `[m, k]`: the gradient of the input.
    fn linear_grad_input(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `xᵀ · grad`, `[k, n]`: the gradient of the weight.
    fn linear_grad_weight(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The column sums of `grad`, `[n]`: the gradient of the bias.
    fn linear_grad_bias(grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl LinearBackend for burn::backend::Flex {
    fn linear_forward(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        flex::forward(x, weight, None)
    }

    fn linear_forward_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        flex::forward(x, weight, Some(bias))
    }

    fn linear_grad_input(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        // grad [m, n] · weightᵀ [n, k].
        flex::product(&grad, flex::Operand::transposed(&weight))
    }

    fn linear_grad_weight(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        // xᵀ [k, m] · grad [m, n].
        flex::product_transposed_lhs(&x, &grad)
    }

    fn linear_grad_bias(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        flex::column_sums(&grad)
    }
}

/// The layer's backward step; its state is the input and the weight.
#[derive(Debug)]
struct LinearBackward<const N: usize>;

impl<B: LinearBackend, const N: usize> Backward<B, N> for LinearBackward<N> {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        let parents = ops.parents;
        if let Some(node) = &parents[0] {
            grads.register::<B>(node.id, B::linear_grad_input(weight, grad.clone()));
        }
        if let Some(node) = &parents[1] {
            grads.register::<B>(node.id, B::linear_grad_weight(x, grad.clone()));
        }
        if N == 3
            && let Some(node) = &parents[N - 1]
        {
            grads.register::<B>(node.id, B::linear_grad_bias(grad));
        }
    }
}

impl<B: LinearBackend, C: CheckpointStrategy> LinearBackend for Autodiff<B, C> {
    fn linear_forward(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match LinearBackward::<2>.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                prep.finish((x.clone(), weight.clone()), B::linear_forward(x, weight))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::linear_forward(x.into_primitive(), weight.into_primitive()))
            }
        }
    }

    fn linear_forward_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        match LinearBackward::<3>.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let y = B::linear_forward_bias(x.clone(), weight.clone(), bias.into_primitive());
                prep.finish((x, weight), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::linear_forward_bias(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn linear_grad_input(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
        panic!("linear: second derivatives are not supported")
    }

    fn linear_grad_weight(_: FloatTensor<Self>, _: FloatTensor<Self>) -> FloatTensor<Self> {
        panic!("linear: second derivatives are not supported")
    }

    fn linear_grad_bias(_: FloatTensor<Self>) -> FloatTensor<Self> {
        panic!("linear: second derivatives are not supported")
    }
}

/// The products on flex tensors' own memory.
#[cfg(feature = "flex")]
mod flex {
    use burn::backend::flex::{FlexTensor, Layout};
    use burn::tensor::{Bytes, DType, Shape};
    use rayon::prelude::*;

    use super::{DECODE_ROWS, kernel};

    /// Below this many multiply-adds gemm runs on the calling thread.
    const PARALLEL_MIN: usize = 1 << 18;

    /// A 2-d f32 operand as gemm reads it: element `(r, c)` at `data[r * rs + c * cs]`.
    pub(super) struct Operand<'a> {
        data: &'a [f32],
        rows: usize,
        cols: usize,
        rs: isize,
        cs: isize,
    }

    impl<'a> Operand<'a> {
        /// `t` as stored; `t` must be one that [`readable`] returned.
        fn of(t: &'a FlexTensor) -> Self {
            let layout = t.layout();
            let (shape, strides) = (layout.shape(), layout.strides());
            Operand {
                data: &t.storage::<f32>()[layout.start_offset()..],
                rows: shape[0],
                cols: shape[1],
                rs: strides[0],
                cs: strides[1],
            }
        }

        /// The transpose of `t` (no copy).
        pub(super) fn transposed(t: &'a FlexTensor) -> Self {
            let Operand { data, rows, cols, rs, cs } = Operand::of(t);
            Operand { data, rows: cols, cols: rows, rs: cs, cs: rs }
        }
    }

    /// `t` itself when gemm can read it in place (non-negative strides), else a contiguous
    /// copy.
    fn readable(t: FlexTensor) -> FlexTensor {
        if t.layout().strides().iter().all(|&s| s >= 0) { t } else { t.to_contiguous() }
    }

    fn tensor(values: Vec<f32>, shape: [usize; 2]) -> FlexTensor {
        FlexTensor::new(
            Bytes::from_elems(values),
            Layout::contiguous(Shape::new(shape)),
            DType::F32,
        )
    }

    /// `x · weight (+ bias)`: the decoding kernel for a few rows of contiguous operands, gemm
    /// otherwise.
    pub(super) fn forward(
        x: FlexTensor,
        weight: FlexTensor,
        bias: Option<FlexTensor>,
    ) -> FlexTensor {
        let (x, weight) = (readable(x), readable(weight));
        let bias = bias.map(|b| b.to_contiguous());
        let bias = bias.as_ref().map(|b| b.as_slice::<f32>().expect("linear: an f32 bias"));
        let (m, k, n) = (x.layout().shape()[0], x.layout().shape()[1], weight.layout().shape()[1]);
        if m <= DECODE_ROWS
            && let (Some(xs), Some(ws)) = (x.as_slice::<f32>(), weight.as_slice::<f32>())
        {
            return tensor(kernel::linear_rows(xs, ws, bias, [m, k, n], true), [m, n]);
        }
        let mut y = vec![0.0f32; m * n];
        if let Some(bias) = bias
            && n > 0
        {
            y.par_chunks_mut(n).for_each(|row| row.copy_from_slice(bias));
        }
        gemm_into(&mut y, n, Operand::of(&x), Operand::of(&weight), bias.is_some());
        tensor(y, [m, n])
    }

    /// `a · b` into a new row-major `[a.rows, b.cols]` tensor.
    pub(super) fn product(a: &FlexTensor, b: Operand<'_>) -> FlexTensor {
        let a = readable(a.clone());
        let (m, n) = (a.layout().shape()[0], b.cols);
        let mut y = vec![0.0f32; m * n];
        gemm_into(&mut y, n, Operand::of(&a), b, false);
        tensor(y, [m, n])
    }

    /// `aᵀ · b` into a new row-major `[a.cols, b.cols]` tensor.
    pub(super) fn product_transposed_lhs(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
        let (a, b) = (readable(a.clone()), readable(b.clone()));
        let (lhs, rhs) = (Operand::transposed(&a), Operand::of(&b));
        let (m, n) = (lhs.rows, rhs.cols);
        let mut y = vec![0.0f32; m * n];
        gemm_into(&mut y, n, lhs, rhs, false);
        tensor(y, [m, n])
    }

    /// `y (+)= a · b` for a row-major `y` with `ldy` columns.
    fn gemm_into(y: &mut [f32], ldy: usize, a: Operand<'_>, b: Operand<'_>, accumulate: bool) {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        assert!(
            k == b.rows && y.len() >= m * ldy && ldy >= n,
            "linear: [{m}, {k}] · [{}, {n}] into {} values",
            b.rows,
            y.len()
        );
        if m == 0 || n == 0 || k == 0 {
            return;
        }
        let last = |o: &Operand<'_>| (o.rows - 1) * o.rs as usize + (o.cols - 1) * o.cs as usize;
        assert!(
            last(&a) < a.data.len() && last(&b) < b.data.len(),
            "linear: an operand's strides reach past its buffer"
        );
        let parallelism = if m * n * k >= PARALLEL_MIN {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: the assertions above keep every index gemm forms inside its buffer: `y` holds
        // m rows of `ldy` ≥ n values, and each operand's last element is in bounds.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                y.as_mut_ptr(),
                1,
                ldy as isize,
                accumulate,
                a.data.as_ptr(),
                a.cs,
                a.rs,
                b.data.as_ptr(),
                b.cs,
                b.rs,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }

    /// The sums of the columns of a 2-d tensor, rows shared among threads.
    pub(super) fn column_sums(t: &FlexTensor) -> FlexTensor {
        let t = t.to_contiguous();
        let (m, n) = (t.layout().shape()[0], t.layout().shape()[1]);
        let values = t.as_slice::<f32>().expect("linear: an f32 gradient");
        let add = |mut acc: Vec<f32>, row: &[f32]| {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
            acc
        };
        let sums = if n == 0 || m == 0 {
            vec![0.0; n]
        } else {
            values
                .par_chunks(n)
                .fold(|| vec![0.0f32; n], add)
                .reduce(|| vec![0.0f32; n], |a, b| add(a, &b))
        };
        FlexTensor::new(Bytes::from_elems(sums), Layout::contiguous(Shape::new([n])), DType::F32)
    }
}

/// `layer.forward(x)`, through engram's kernels on flex in f32 (forward and, on an autodiff
/// device, backward); burn's `linear` elsewhere.
///
/// # Shapes
/// - `x`: `[..., d_input]`; output: `[..., d_output]`.
///
/// # Panics
/// If the last dim of `x` is not the layer's `d_input`.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = layer.weight.val();
    let d_input = weight.dims()[0];
    assert_eq!(
        x.dims()[D - 1],
        d_input,
        "linear: input width {} is not the layer's d_input {d_input}",
        x.dims()[D - 1]
    );
    if !supported(&x.device()) || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return layer.forward(x);
    }
    linear_parts(x, weight, layer.bias.as_ref().map(|b| b.val()))
}

/// `x · weight + bias` for a `[d_input, d_output]` weight (a view, such as some columns of a
/// larger one, is read in place), through engram's kernels where [`linear`] uses them and
/// burn's `linear` elsewhere.
pub(crate) fn linear_parts<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let dims = x.dims();
    let [d_input, d_output] = weight.dims();
    assert_eq!(
        dims[D - 1],
        d_input,
        "linear: input width {} is not d_input {d_input}",
        dims[D - 1]
    );
    if !supported(&x.device()) || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let rows: usize = dims[..D - 1].iter().product();
    let x = x.reshape([rows, d_input]).into_dispatch();
    let weight = weight.into_dispatch();
    let y = match bias {
        Some(bias) => {
            <Dispatch as LinearBackend>::linear_forward_bias(x, weight, bias.into_dispatch())
        }
        None => <Dispatch as LinearBackend>::linear_forward(x, weight),
    };
    let mut out = dims;
    out[D - 1] = d_output;
    Tensor::<2>::from_dispatch(y).reshape(out)
}

/// Whether `device` runs engram's kernels: flex, plain or autodiff.
fn supported(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        engram_tensor::backend_of(device) == Some(engram_tensor::Backend::Flex)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;
    use engram_tensor::testing::{Tolerance, assert_close, seeded_values, test_device, to_f64};

    use super::*;
    use crate::test_util::tensor;

    #[test]
    fn matches_the_layer_for_every_row_count() {
        let device = test_device();
        for bias in [true, false] {
            let layer = LinearConfig::new(40, 50).with_bias(bias).init(&device);
            for rows in [1, 3, DECODE_ROWS, DECODE_ROWS + 1] {
                let (x, _) = tensor::<3>(rows as u64, [1, rows, 40]);
                let want = layer.forward(x.clone());
                assert_close(linear(&layer, x), &to_f64(want), Tolerance::F32);
            }
        }
    }

    #[test]
    fn matches_a_layer_stored_by_columns() {
        let device = test_device();
        let layer = LinearConfig::new(12, 7).with_layout(burn::nn::LinearLayout::Col).init(&device);
        let (x, _) = tensor::<2>(5, [2, 12]);
        let want = layer.forward(x.clone());
        assert_close(linear(&layer, x), &to_f64(want), Tolerance::F32);
    }

    /// Output and the gradients of input, weight and bias against burn-nn's layer on the same
    /// weights, for both weight layouts, decoding-sized and larger inputs.
    #[test]
    fn gradients_match_the_layer() {
        let device = test_device().autodiff();
        for (layout, bias, rows) in [
            (burn::nn::LinearLayout::Row, true, 3),
            (burn::nn::LinearLayout::Row, true, 150),
            (burn::nn::LinearLayout::Row, false, 150),
            (burn::nn::LinearLayout::Col, true, 150),
        ] {
            let layer = LinearConfig::new(24, 40).with_bias(bias).with_layout(layout).init(&device);
            let on = |seed, shape: [usize; 3]| {
                let values = seeded_values(seed, shape.iter().product());
                Tensor::<3>::from_data(TensorData::new(values, shape), &device)
            };
            let x = on(rows as u64, [rows, 2, 24]).require_grad();
            // A weighted sum, so that the upstream gradient differs between elements.
            let w = on(7, [rows, 2, 40]);
            let ours = linear(&layer, x.clone());
            let theirs = layer.forward(x.clone());
            assert_close(ours.clone(), &to_f64(theirs.clone()), Tolerance::F32);
            let g_ours = (ours * w.clone()).sum().backward();
            let g_theirs = (theirs * w).sum().backward();
            let pairs = [
                (x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap()),
                (layer.weight.grad(&g_ours).unwrap().reshape([-1, 1, 1]), {
                    layer.weight.grad(&g_theirs).unwrap().reshape([-1, 1, 1])
                }),
            ];
            for (a, b) in pairs {
                assert_close(a, &to_f64(b), Tolerance::new(1e-4, 1e-4));
            }
            if let Some(b) = &layer.bias {
                let (a, e) = (b.grad(&g_ours).unwrap(), b.grad(&g_theirs).unwrap());
                assert_close(a, &to_f64(e), Tolerance::new(1e-4, 1e-4));
            }
        }
    }

    #[test]
    fn input_without_gradient_still_trains_the_weight() {
        let device = test_device().autodiff();
        let layer = LinearConfig::new(6, 4).init(&device);
        let x = Tensor::<2>::ones([40, 6], &device);
        let grads = linear(&layer, x).sum().backward();
        // d(sum)/dW[i][j] = sum over rows of x[r][i] = 40.
        let grad = layer.weight.grad(&grads).expect("a weight gradient");
        assert_close(grad, &[40.0; 24], Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "linear: input width 5 is not the layer's d_input 6")]
    fn panics_on_the_wrong_width() {
        let layer = LinearConfig::new(6, 4).init(&test_device());
        linear(&layer, Tensor::<2>::ones([1, 5], &test_device()));
    }
}
