//! Linear layers for the few rows of a decoding step: burn-nn's `Linear::forward` with a host
//! kernel on flex for inputs of at most [`DECODE_ROWS`] rows.
//!
//! A decoding step multiplies one or a batch of tokens (1 to 16 rows) by every weight matrix of
//! the model, and on flex these skinny products are most of its time: gemm streams the weight
//! poorly at that shape and runs one thread (see [`kernel`]). The kernel reads the tensors'
//! own memory through a backend extension (no copies of the weights), on the plain flex device
//! in f32; autodiff devices, other backends, dtypes and larger inputs take burn's `linear`.

#[cfg(any(feature = "flex", test))]
mod kernel;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor};

/// Inputs of at most this many rows (the product of all but the last dim) take the kernel.
pub const DECODE_ROWS: usize = 32;

/// The skinny product as a backend operation.
#[backend_extension(Flex: cfg(feature = "flex"))]
pub trait DecodeLinearBackend: Backend {
    /// `x · weight` for `x` `[m, k]` and `weight` `[k, n]`.
    fn decode_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x · weight + bias`, `bias` `[n]`. (A separate method: the extension macro does not
    /// route an optional tensor.)
    fn decode_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "flex")]
impl DecodeLinearBackend for burn::backend::Flex {
    fn decode_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_linear(x, weight, None)
    }

    fn decode_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        flex_linear(x, weight, Some(bias))
    }
}

/// The kernel on flex tensors' own memory.
#[cfg(feature = "flex")]
fn flex_linear(
    x: burn::backend::flex::FlexTensor,
    weight: burn::backend::flex::FlexTensor,
    bias: Option<burn::backend::flex::FlexTensor>,
) -> burn::backend::flex::FlexTensor {
    use burn::backend::Flex;
    use burn::backend::flex::FlexTensor;
    use burn::backend::ops::FloatTensorOps;
    use burn::tensor::Shape;

    let (m, k) = (x.layout().shape()[0], x.layout().shape()[1]);
    let n = weight.layout().shape()[1];
    let x = x.to_contiguous();
    // A weight stored transposed (burn-nn's column layout) is not read in place: that one
    // takes flex's matmul.
    let (Some(xs), Some(ws)) = (x.as_slice::<f32>(), weight.as_slice::<f32>()) else {
        let y = Flex::float_matmul(x, weight);
        return match bias {
            Some(bias) => Flex::float_add(y, Flex::float_reshape(bias, Shape::new([1, n]))),
            None => y,
        };
    };
    let bias = bias.map(|b| b.to_contiguous());
    let bs = bias.as_ref().map(|b| b.as_slice::<f32>().expect("a contiguous f32 bias"));
    let y = kernel::linear_rows(xs, ws, bs, [m, k, n], true);
    FlexTensor::new(
        burn::tensor::Bytes::from_elems(y),
        burn::backend::flex::Layout::contiguous(Shape::new([m, n])),
        DType::F32,
    )
}

/// `layer.forward(x)`, with a faster kernel on flex when `x` has at most [`DECODE_ROWS`] rows:
/// the projections of a decoding step.
///
/// # Shapes
/// - `x`: `[..., d_input]`; output: `[..., d_output]`.
///
/// # Panics
/// If the last dim of `x` is not the layer's `d_input`.
pub fn decode_linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let dims = x.dims();
    let rows: usize = dims[..D - 1].iter().product();
    let weight = layer.weight.val();
    let [d_input, d_output] = weight.dims();
    assert_eq!(
        dims[D - 1],
        d_input,
        "decode_linear: input width {} is not the layer's d_input {d_input}",
        dims[D - 1]
    );
    if !(1..=DECODE_ROWS).contains(&rows)
        || !supported(&x.device())
        || x.dtype() != DType::F32
        || weight.dtype() != DType::F32
    {
        return layer.forward(x);
    }
    let x = x.reshape([rows, d_input]).into_dispatch();
    let weight = weight.into_dispatch();
    let y = match &layer.bias {
        Some(bias) => <Dispatch as DecodeLinearBackend>::decode_linear_bias(
            x,
            weight,
            bias.val().into_dispatch(),
        ),
        None => <Dispatch as DecodeLinearBackend>::decode_linear(x, weight),
    };
    let mut out = dims;
    out[D - 1] = d_output;
    Tensor::<2>::from_dispatch(y).reshape(out)
}

/// Whether `device` runs the kernel: the plain flex device (the extension lists no other).
fn supported(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        !device.is_autodiff()
            && engram_tensor::backend_of(device) == Some(engram_tensor::Backend::Flex)
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
    use engram_tensor::testing::{Tolerance, assert_close, test_device, to_f64};

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
                assert_close(decode_linear(&layer, x), &to_f64(want), Tolerance::F32);
            }
        }
    }

    #[test]
    fn matches_a_layer_stored_by_columns() {
        let device = test_device();
        let layer = LinearConfig::new(12, 7).with_layout(burn::nn::LinearLayout::Col).init(&device);
        let (x, _) = tensor::<2>(5, [2, 12]);
        let want = layer.forward(x.clone());
        assert_close(decode_linear(&layer, x), &to_f64(want), Tolerance::F32);
    }

    #[test]
    fn takes_the_layer_on_an_autodiff_device() {
        let device = test_device().autodiff();
        let layer = LinearConfig::new(6, 4).init(&device);
        let x = Tensor::<2>::ones([1, 6], &device).require_grad();
        let y = decode_linear(&layer, x.clone());
        let grads = y.sum().backward();
        assert!(x.grad(&grads).is_some(), "no gradient reached the input");
    }

    #[test]
    #[should_panic(expected = "decode_linear: input width 5 is not the layer's d_input 6")]
    fn panics_on_the_wrong_width() {
        let layer = LinearConfig::new(6, 4).init(&test_device());
        decode_linear(&layer, Tensor::<2>::ones([1, 5], &test_device()));
    }
}
