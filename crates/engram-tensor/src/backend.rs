//! The one place in engram that names a burn backend.
//!
//! Backends are chosen at build time with the cargo features `flex` (default), `ndarray` and
//! `wgpu`. When several are compiled in, [`device`] picks one at run time: an explicit request
//! first, then the `ENGRAM_BACKEND` environment variable, then the first compiled-in backend in
//! the order of [`Backend::ALL`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::Error;

/// Name of the environment variable that selects a backend at run time.
pub const BACKEND_ENV: &str = "ENGRAM_BACKEND";

/// A burn backend engram knows how to build for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `burn-flex`: pure-Rust CPU backend with SIMD matmul (the default).
    Flex,
    /// `burn-ndarray`: pure-Rust CPU backend, deprecated upstream, kept for comparison.
    NdArray,
    /// `burn-wgpu`: GPU through wgpu (Vulkan, Metal, DX12 or WebGPU).
    Wgpu,
}

impl Backend {
    /// Every backend engram knows, in order of preference when none is requested.
    pub const ALL: [Backend; 3] = [Backend::Flex, Backend::Wgpu, Backend::NdArray];

    /// The name used by `ENGRAM_BACKEND`, `--backend`, cargo features and bench labels.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether this backend was compiled into the current build.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::NdArray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled into this build, in order of preference.
    pub fn compiled() -> Vec<Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The backend used when none is requested: the first compiled-in one.
    ///
    /// # Errors
    /// [`Error::NoBackend`] when the build has no backend feature at all.
    pub fn preferred() -> Result<Backend, Error> {
        Backend::compiled().first().copied().ok_or(Error::NoBackend)
    }

    /// The burn device for this backend (without autodiff).
    ///
    /// # Errors
    /// [`Error::BackendNotCompiled`] when the backend's feature is not enabled.
    pub fn device(self) -> Result<Device, Error> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => {
                crate::alloc::keep_freed_buffers();
                Ok(Device::flex())
            }
            #[cfg(feature = "ndarray")]
            // Deprecated upstream; engram keeps it to compare backends.
            #[allow(deprecated)]
            Backend::NdArray => {
                crate::alloc::keep_freed_buffers();
                Ok(Device::ndarray())
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[allow(unreachable_patterns)]
            other => Err(not_compiled(other.name())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    /// Parses a backend name, case-insensitively. Unknown names are an error that lists the
    /// backends of this build.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Backend::ALL.into_iter().find(|b| b.name() == wanted).ok_or_else(|| not_compiled(s))
    }
}

fn not_compiled(requested: &str) -> Error {
    Error::BackendNotCompiled {
        requested: requested.to_owned(),
        available: Backend::compiled().iter().map(|b| b.name()).collect::<Vec<_>>().join(", "),
    }
}

/// Resolves which backend to run on: `requested` if given, else `ENGRAM_BACKEND` if set and not
/// empty, else [`Backend::preferred`].
///
/// # Errors
/// [`Error::BackendNotCompiled`] when the requested backend is unknown or not compiled in; the
/// message names the backends that are.
pub fn select_backend(requested: Option<&str>) -> Result<Backend, Error> {
    let from_env = std::env::var(BACKEND_ENV).ok().filter(|v| !v.trim().is_empty());
    match requested.map(str::to_owned).or(from_env) {
        Some(name) => {
            let backend: Backend = name.parse()?;
            if backend.is_compiled() { Ok(backend) } else { Err(not_compiled(&name)) }
        }
        None => Backend::preferred(),
    }
}

/// The device engram runs on: the backend chosen by [`select_backend`] (`None` defers to
/// `ENGRAM_BACKEND`, then the preferred compiled-in backend).
///
/// This is the only function in engram that creates a device; everything else takes `&Device`.
/// Call `.autodiff()` on the result for training.
///
/// # Errors
/// See [`select_backend`].
///
/// # Example
/// ```
/// let device = engram_tensor::device(None).expect("a backend is compiled in");
/// let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
/// assert_eq!(x.dims(), [2]);
/// ```
pub fn device(requested: Option<&str>) -> Result<Device, Error> {
    select_backend(requested)?.device()
}

/// A contiguous f32 flex tensor holding `values` (for the host kernels of engram-tensor's
/// backend extensions).
#[cfg(feature = "flex")]
pub(crate) fn flex_f32<S: Into<burn::tensor::Shape>>(
    values: Vec<f32>,
    shape: S,
) -> burn::backend::flex::FlexTensor {
    burn::backend::flex::FlexTensor::new(
        burn::tensor::Bytes::from_elems(values),
        burn::backend::flex::Layout::contiguous(shape.into()),
        burn::tensor::DType::F32,
    )
}

/// The engram backend a device belongs to (autodiff devices answer for the device they wrap);
/// `None` for devices of backends engram does not build.
pub fn backend_of(device: &Device) -> Option<Backend> {
    use burn::backend::DispatchDevice as D;
    match device.clone().without_autodiff().as_dispatch() {
        #[cfg(feature = "flex")]
        D::Flex(_) => Some(Backend::Flex),
        #[cfg(feature = "ndarray")]
        D::NdArray(_) => Some(Backend::NdArray),
        #[cfg(feature = "wgpu")]
        D::Cube(_) => Some(Backend::Wgpu),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Whether f64 arithmetic on `device` is trustworthy, including `exp` and `log`.
///
/// GPU shading languages lack f64 transcendental functions, so wgpu devices can report f64 as
/// supported and still compute `exp` wrongly (seen with Mesa's lavapipe); only the CPU backends
/// answer yes.
pub fn supports_f64(device: &Device) -> bool {
    matches!(backend_of(device), Some(Backend::Flex | Backend::NdArray))
        && device.supports_dtype(burn::tensor::DType::F64)
}

/// The number of CPU threads the CPU backends use (rayon's global pool; `RAYON_NUM_THREADS`
/// changes it).
pub fn cpu_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
        }
        assert_eq!(" FLEX ".parse::<Backend>().unwrap(), Backend::Flex);
    }

    #[test]
    fn unknown_backend_names_the_compiled_ones() {
        let message = select_backend(Some("cuda")).unwrap_err().to_string();
        assert!(message.contains("cuda"), "{message}");
        for backend in Backend::compiled() {
            assert!(message.contains(backend.name()), "{message}");
        }
    }

    #[test]
    fn backend_not_compiled_is_an_error() {
        for backend in Backend::ALL.into_iter().filter(|b| !b.is_compiled()) {
            let message = select_backend(Some(backend.name())).unwrap_err().to_string();
            assert!(message.contains("not compiled in"), "{message}");
        }
    }

    #[test]
    fn explicit_request_picks_that_backend() {
        for backend in Backend::compiled() {
            assert_eq!(select_backend(Some(backend.name())).unwrap(), backend);
            let device = backend.device().unwrap();
            assert_eq!(backend_of(&device), Some(backend));
            assert_eq!(backend_of(&device.autodiff()), Some(backend));
        }
    }
}
