//! Reading series from text: one series per line, values separated by tabs, commas or spaces,
//! optionally with a label first (the UCR archive's `*_TRAIN.tsv` / `*_TEST.tsv`).
//!
//! Every problem is reported with where it was found (`file:line`, column) and nothing is
//! dropped silently: a value that is not a number, NaN or infinite, or a labelled row without
//! values is an error. Blank lines are skipped.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

/// Series read from text, with their labels when the text has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesSet {
    /// One series per non-blank line.
    pub series: Vec<Vec<f64>>,
    /// The first field of each line, when the text was read as labelled.
    pub labels: Option<Vec<String>>,
}

impl SeriesSet {
    /// The number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there are no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Parses `text` (see the module doc). `source` names where the text came from in errors
/// (a path, or `"<stdin>"`).
///
/// # Errors
/// [`Error::Parse`] with the source, line and column of the first bad field.
///
/// # Example
/// ```
/// let set = engram_dtw::parse_series("1\t0.5\t0.25\n2\t1.0\t-1.0\n", "example.tsv", true)?;
/// assert_eq!(set.series, vec![vec![0.5, 0.25], vec![1.0, -1.0]]);
/// assert_eq!(set.labels.unwrap(), ["1", "2"]);
/// # Ok::<(), engram_dtw::Error>(())
/// ```
pub fn parse_series(text: &str, source: &str, labelled: bool) -> Result<SeriesSet> {
    let mut set = SeriesSet { series: Vec::new(), labels: labelled.then(Vec::new) };
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> =
            line.split(|c: char| c == ',' || c.is_whitespace()).filter(|f| !f.is_empty()).collect();
        if fields.is_empty() {
            continue;
        }
        let parse_error = |column: usize, message: String| Error::Parse {
            file: source.to_owned(),
            line: index + 1,
            column,
            message,
        };
        let values = match &mut set.labels {
            Some(labels) => {
                labels.push(fields[0].to_owned());
                if fields.len() == 1 {
                    return Err(parse_error(1, format!("label `{}` has no values", fields[0])));
                }
                &fields[1..]
            }
            None => &fields[..],
        };
        let first_column = if labelled { 2 } else { 1 };
        let series = values
            .iter()
            .enumerate()
            .map(|(k, field)| match field.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(v) => Err(parse_error(first_column + k, format!("non-finite value {v}"))),
                Err(_) => Err(parse_error(first_column + k, format!("`{field}` is not a number"))),
            })
            .collect::<Result<Vec<f64>>>()?;
        set.series.push(series);
    }
    Ok(set)
}

/// Reads and parses a file (see [`parse_series`]).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Parse`] for its content.
pub fn read_series(path: &Path, labelled: bool) -> Result<SeriesSet> {
    let text = fs::read_to_string(path)
        .map_err(|err| Error::Io { path: path.display().to_string(), message: err.to_string() })?;
    parse_series(&text, &path.display().to_string(), labelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ucr_rows_with_any_separator_and_skips_blank_lines() {
        let set = parse_series("1\t0.5 0.25\n\n-1,1e-3,2\n", "t.tsv", true).unwrap();
        assert_eq!(set.series, vec![vec![0.5, 0.25], vec![1e-3, 2.0]]);
        assert_eq!(set.labels.unwrap(), ["1", "-1"]);
        let set = parse_series("3 4 5\n6 7\n", "plain", false).unwrap();
        assert_eq!(set.series, vec![vec![3.0, 4.0, 5.0], vec![6.0, 7.0]]);
        assert!(set.labels.is_none());
    }

    #[test]
    fn bad_values_are_reported_with_line_and_column() {
        let err = parse_series("1 2 3\n4 x 6\n", "data.txt", false).unwrap_err();
        assert_eq!(err.to_string(), "data.txt:2: column 2: `x` is not a number");
        let err = parse_series("a\t1\tNaN\n", "u.tsv", true).unwrap_err();
        assert_eq!(err.to_string(), "u.tsv:1: column 3: non-finite value NaN");
        let err = parse_series("\n\nlabel\n", "u.tsv", true).unwrap_err();
        assert_eq!(err.to_string(), "u.tsv:3: column 1: label `label` has no values");
    }

    #[test]
    fn missing_files_name_the_path() {
        let err = read_series(Path::new("/no/such/file.tsv"), true).unwrap_err();
        assert!(err.to_string().starts_with("cannot read /no/such/file.tsv: "), "{err}");
    }
}
