//! The host kernel ([`super::host`]) on flex tensors' own memory: f32 inputs with every size
//! positive take it; other dtypes and empty sizes answer `None` and take the composed path.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{BoolStore, Bytes, DType, Shape};

use super::host::{self, Dims};
use super::kernel::FlashSpec;
use super::simd::Isa;

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// `q`, `k`, `v` contiguous f32 and the key padding as bytes, with their sizes; `None` when the
/// host kernel does not take them.
fn inputs(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    padding: &FlexTensor,
) -> Option<(Dims, [FlexTensor; 4])> {
    let f32s = [q, k, v].iter().all(|t| t.dtype() == DType::F32);
    let bytes = matches!(padding.dtype(), DType::Bool(BoolStore::Native | BoolStore::U8));
    let [batch, heads, tq, d] = dims4(q);
    let [_, _, tk, _] = dims4(k);
    let dv = dims4(v)[3];
    let dims = Dims { batch, heads, tq, tk, d, dv };
    if !f32s || !bytes || batch * heads * tq * tk * d * dv == 0 {
        return None;
    }
    Some((dims, [q, k, v, padding].map(FlexTensor::to_contiguous)))
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("flash host kernel: a contiguous f32 tensor")
}

fn bools(t: &FlexTensor) -> &[u8] {
    // Booleans are bytes in flex; `as_slice` only hands out the tensor's own dtype.
    let (start, end) =
        t.layout().contiguous_offsets().expect("flash host kernel: a contiguous mask");
    &t.storage::<u8>()[start..end]
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::new(shape)), DType::F32)
}

/// The output `[b, h, tq, dv]` and logsumexp `[b, h, tq, 1]`, or `None` (see the module doc).
pub(super) fn forward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    padding: &FlexTensor,
    spec: &FlashSpec,
) -> Option<(FlexTensor, FlexTensor)> {
    let (dims, [q, k, v, padding]) = inputs(q, k, v, padding)?;
    let (out, lse) =
        host::forward(Isa::detect(), f32s(&q), f32s(&k), f32s(&v), bools(&padding), dims, spec);
    let Dims { batch, heads, tq, dv, .. } = dims;
    Some((tensor(out, [batch, heads, tq, dv]), tensor(lse, [batch, heads, tq, 1])))
}

/// `dq`, `dk`, `dv`, or `None` (see the module doc).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    padding: &FlexTensor,
    output: &FlexTensor,
    lse: &FlexTensor,
    grad: &FlexTensor,
    spec: &FlashSpec,
) -> Option<[FlexTensor; 3]> {
    let (dims, [q, k, v, padding]) = inputs(q, k, v, padding)?;
    if [output, lse, grad].iter().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    let [output, lse, grad] = [output, lse, grad].map(FlexTensor::to_contiguous);
    let [dq, dk, dv] = host::backward(
        Isa::detect(),
        f32s(&q),
        f32s(&k),
        f32s(&v),
        bools(&padding),
        f32s(&output),
        f32s(&lse),
        f32s(&grad),
        dims,
        spec,
    );
    let Dims { batch, heads, tq, tk, d, .. } = dims;
    Some([
        tensor(dq, [batch, heads, tq, d]),
        tensor(dk, [batch, heads, tk, d]),
        tensor(dv, [batch, heads, tk, dims.dv]),
    ])
}
