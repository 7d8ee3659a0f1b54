//! The error type of engram-dtw.

/// Errors from engram-dtw: problems with the data or the configuration that a caller can fix.
///
/// Messages are lowercase and carry the offending values; `which` names the series the problem
/// was found in (`"first series"`, `"training series 4"`, `"query"`, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A series (or a collection of series) has no elements.
    #[error("{which} is empty")]
    Empty {
        /// What was empty.
        which: String,
    },
    /// A value is NaN or infinite.
    #[error("{which} has the non-finite value {value} at index {index} (flat index into its data)")]
    NonFinite {
        /// The series that holds it.
        which: String,
        /// Its index in the series' flat (row-major) data; the time index for univariate series.
        index: usize,
        /// The value itself, widened to f64.
        value: f64,
    },
    /// Two series whose points have different dimensions were compared.
    #[error(
        "dimension mismatch: {which_a} has points of dimension {dim_a}, {which_b} of dimension {dim_b}"
    )]
    DimensionMismatch {
        /// The first series.
        which_a: String,
        /// Its dimension.
        dim_a: usize,
        /// The second series.
        which_b: String,
        /// Its dimension.
        dim_b: usize,
    },
    /// Flat multivariate data whose length is not a multiple of the dimension.
    #[error("ragged series: {len} values do not split into points of dimension {dim}")]
    Ragged {
        /// Number of values in the flat data.
        len: usize,
        /// The requested dimension.
        dim: usize,
    },
    /// The window leaves no warping path from `(0, 0)` to `(n - 1, m - 1)`.
    #[error("window {window} leaves no warping path from (0, 0) to ({}, {}) for lengths {n} and {m}", n - 1, m - 1)]
    Unreachable {
        /// The window, as `{:?}` prints it.
        window: String,
        /// Length of the first series.
        n: usize,
        /// Length of the second series.
        m: usize,
    },
    /// An Itakura parallelogram with a maximum slope below 1 or not finite.
    #[error("itakura max_slope must be finite and at least 1, got {max_slope}")]
    InvalidSlope {
        /// The slope that was given.
        max_slope: f64,
    },
    /// A window given as a percentage outside `0..=100`.
    #[error("window percentage {percent} is outside 0..=100")]
    InvalidPercent {
        /// The percentage that was given.
        percent: u32,
    },
    /// Two things that must have the same length do not.
    #[error("length mismatch: {what}: {left} vs {right}")]
    LengthMismatch {
        /// What was compared (`"lb_keogh series and envelope"`, `"training series and labels"`).
        what: &'static str,
        /// The first length.
        left: usize,
        /// The second length.
        right: usize,
    },
    /// Too few series for the operation (leave-one-out needs two).
    #[error("{op} needs at least {needed} series, got {got}")]
    TooFewSeries {
        /// The operation.
        op: &'static str,
        /// How many it needs.
        needed: usize,
        /// How many it got.
        got: usize,
    },
    /// A query longer than the data it is searched in.
    #[error("query of length {query} is longer than the data of length {data}")]
    QueryTooLong {
        /// Query length.
        query: usize,
        /// Data length.
        data: usize,
    },
    /// An operation that needs a univariate series got a multivariate one.
    #[error("{op} needs univariate series, got dimension {dim}")]
    NotUnivariate {
        /// The operation.
        op: &'static str,
        /// The dimension that was given.
        dim: usize,
    },
    /// A lower bound or search that is only valid for some local costs.
    #[error(
        "{op} is only valid for the squared Euclidean, Euclidean and absolute costs, got {cost:?}"
    )]
    UnsupportedCost {
        /// The operation.
        op: &'static str,
        /// The cost that was given.
        cost: crate::Cost,
    },
    /// A field of a text file that is not a finite number, or a row without values.
    #[error("{file}:{line}: column {column}: {message}")]
    Parse {
        /// The file (or `<stdin>`) it came from.
        file: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A file that cannot be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// rayon could not build a thread pool of the requested size.
    #[error("cannot build a thread pool of {threads} threads: {message}")]
    ThreadPool {
        /// Requested number of threads.
        threads: usize,
        /// rayon's message.
        message: String,
    },
}

/// engram-dtw's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
