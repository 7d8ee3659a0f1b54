//! The error type of engram-tensor.

/// Errors from engram-tensor: configuration problems a user can fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A backend was requested that is unknown or not compiled into this build.
    #[error(
        "backend `{requested}` is not compiled in (available: {available}); \
         rebuild with `--features {requested}` or pick one of the available backends"
    )]
    BackendNotCompiled {
        /// The name that was asked for.
        requested: String,
        /// Comma-separated names of the compiled-in backends.
        available: String,
    },
    /// The build has no backend feature enabled.
    #[error("no backend is compiled in; enable one of the features `flex`, `ndarray` or `wgpu`")]
    NoBackend,
}
