//! The host kernel ([`super::host`]) on flex tensors' own memory: f32 inputs with every size
//! positive take it; other dtypes and empty sizes answer `None` and take the composed path.
//! Views with unit stride along the width (heads split off `[batch, t, heads · width]` and
//! swapped to the front) are read in place; other layouts are copied first.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{BoolStore, Bytes, DType, Shape};

use super::host::{self, Dims, Strided};
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
    Some((dims, [readable(q), readable(k), readable(v), padding.to_contiguous()]))
}

/// `t` itself when [`strided`] can read it in place, else a contiguous copy.
fn readable(t: &FlexTensor) -> FlexTensor {
    let strides = t.layout().strides();
    if strides[3] == 1 && strides[..3].iter().all(|&s| s >= 0) {
        t.clone()
    } else {
        t.to_contiguous()
    }
}

/// The f32 view of a tensor that [`readable`] returned.
fn strided(t: &FlexTensor) -> Strided<'_> {
    let layout = t.layout();
    let s = layout.strides();
    let data = &t.storage::<f32>()[layout.start_offset()..];
    Strided { data, strides: [s[0], s[1], s[2]].map(|s| s as usize) }
}

fn bools(t: &FlexTensor) -> &[u8] {
    // Booleans are bytes in flex; `as_slice` only hands out the tensor's own dtype.
    let (start, end) =
        t.layout().contiguous_offsets().expect("flash host kernel: a contiguous mask");
    &t.storage::<u8>()[start..end]
}

/// `[batch, heads, t, width]` values, laid out token-major (`[batch, t, heads, width]` in
/// memory) or head-major.
fn tensor(values: Vec<f32>, shape: [usize; 4], token_major: bool) -> FlexTensor {
    let [_, heads, t, width] = shape;
    let layout = if token_major {
        let strides = [t * heads * width, width, heads * width, 1].map(|s| s as isize);
        Layout::new(Shape::new(shape), strides.to_vec(), 0)
    } else {
        Layout::contiguous(Shape::new(shape))
    };
    FlexTensor::new(Bytes::from_elems(values), layout, DType::F32)
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
    let Dims { batch, heads, tq, d, dv, .. } = dims;
    // The output takes the queries' layout: multi-head attention merges its heads back with a
    // view then.
    let token_major = strided(&q).token_major([heads, tq, d]);
    let (out, lse) = host::forward(
        Isa::detect(),
        strided(&q),
        strided(&k),
        strided(&v),
        bools(&padding),
        dims,
        spec,
        token_major,
    );
    Some((
        tensor(out, [batch, heads, tq, dv], token_major),
        tensor(lse, [batch, heads, tq, 1], false),
    ))
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
    let (output, lse, grad) = (readable(output), lse.to_contiguous(), readable(grad));
    let lse = lse.as_slice::<f32>().expect("flash host kernel: a contiguous logsumexp");
    let Dims { batch, heads, tq, tk, d, .. } = dims;
    // Each gradient takes its input's layout (see `forward`).
    let token_major = [
        strided(&q).token_major([heads, tq, d]),
        strided(&k).token_major([heads, tk, d]),
        strided(&v).token_major([heads, tk, dims.dv]),
    ];
    let [dq, dk, dv] = host::backward(
        Isa::detect(),
        strided(&q),
        strided(&k),
        strided(&v),
        bools(&padding),
        strided(&output),
        lse,
        strided(&grad),
        dims,
        spec,
        token_major,
    );
    Some([
        tensor(dq, [batch, heads, tq, d], token_major[0]),
        tensor(dk, [batch, heads, tk, d], token_major[1]),
        tensor(dv, [batch, heads, tk, dims.dv], token_major[2]),
    ])
}
