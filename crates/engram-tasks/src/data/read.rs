//! File formats and the reader: decoding, line bookkeeping and the malformed-row policy.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::csv::{Dialect, Records};
use super::{DataError, Example, Malformed, OnMalformed, ReadReport};

/// A column of a delimited file: its 0-based index, or its name in the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    /// 0-based position.
    Index(usize),
    /// Name in the header row.
    Name(String),
}

impl FromStr for ColumnRef {
    type Err = std::convert::Infallible;

    /// All digits is an index, anything else a name: `"0"` → `Index(0)`, `"text"` → `Name`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse() {
            Ok(index) => Self::Index(index),
            Err(_) => Self::Name(s.to_string()),
        })
    }
}

/// How a file lays out its examples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Format {
    /// `label text` per line: the first whitespace-separated token is the label, the rest of the
    /// line the text (TREC's `TREC.*.all`, Kim's `stsa.*`, MR's `rt-polarity.all`).
    LabelText,
    /// GLUE's tab-separated files: a header with `sentence` and `label` columns, no quoting.
    GlueTsv,
    /// One text per line, each with the same `label` (MR's `rt-polarity.pos` and `.neg`).
    Lines {
        /// The label of every line.
        label: String,
    },
    /// Delimited columns, such as CSV or TSV; see [`Format::csv`] and [`Format::tsv`].
    Delimited {
        /// The field separator, such as `b','` or `b'\t'`.
        delimiter: u8,
        /// The quote character (RFC 4180: a quoted field may hold delimiters, newlines and
        /// doubled quotes), or `None` to take every character literally.
        quote: Option<u8>,
        /// Whether the first row names the columns.
        header: bool,
        /// The column with the text.
        text_column: ColumnRef,
        /// The column with the label.
        label_column: ColumnRef,
    },
    /// One JSON object per line; the label may be a string, a number or a boolean.
    Jsonl {
        /// The field with the text.
        text_field: String,
        /// The field with the label.
        label_field: String,
    },
}

impl Format {
    /// Comma-separated with a header and `"` quoting.
    pub fn csv(text_column: ColumnRef, label_column: ColumnRef) -> Self {
        Self::Delimited {
            delimiter: b',',
            quote: Some(b'"'),
            header: true,
            text_column,
            label_column,
        }
    }

    /// Tab-separated with a header and `"` quoting.
    pub fn tsv(text_column: ColumnRef, label_column: ColumnRef) -> Self {
        Self::Delimited {
            delimiter: b'\t',
            quote: Some(b'"'),
            header: true,
            text_column,
            label_column,
        }
    }
}

/// Reads the examples of one file.
///
/// Returns the examples in file order and a [`ReadReport`]; see the [module docs](super) for
/// what counts as malformed, blank lines and decoding.
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read, [`DataError::Malformed`] at the first malformed
/// row under [`OnMalformed::Stop`], [`DataError::MissingColumn`] or
/// [`DataError::NamedColumnWithoutHeader`] for a column that cannot be found, and
/// [`DataError::Empty`] if no example is left.
pub fn read(
    path: &Path,
    format: &Format,
    on_malformed: OnMalformed,
) -> Result<(Vec<Example>, ReadReport), DataError> {
    let (rows, report) = read_with_lines(path, format, on_malformed)?;
    Ok((rows.into_iter().map(|(_, example)| example).collect(), report))
}

/// [`read`], keeping each example's 1-based line so that later checks can name it.
pub(crate) fn read_with_lines(
    path: &Path,
    format: &Format,
    on_malformed: OnMalformed,
) -> Result<(Vec<(usize, Example)>, ReadReport), DataError> {
    let bytes =
        std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let mut sink = Sink::new(path, on_malformed);
    let lines = decode_lines(&bytes, &mut sink.report);
    let mut rows = Vec::new();
    match format {
        Format::LabelText => {
            for (line, text) in nonblank(&lines, &mut sink.report) {
                match text.split_once(char::is_whitespace) {
                    Some((label, rest)) if !rest.trim().is_empty() => {
                        rows.push((line, Example::new(rest.trim(), label)));
                    }
                    _ => sink.malformed(line, "no text after the label")?,
                }
            }
        }
        Format::Lines { label } => {
            for (line, text) in nonblank(&lines, &mut sink.report) {
                rows.push((line, Example::new(text.trim(), label.as_str())));
            }
        }
        Format::GlueTsv => {
            let dialect = Dialect { delimiter: b'\t', quote: None };
            let (text, label) =
                (ColumnRef::Name("sentence".into()), ColumnRef::Name("label".into()));
            read_delimited(&lines, dialect, true, &text, &label, &mut sink, &mut rows)?;
        }
        Format::Delimited { delimiter, quote, header, text_column, label_column } => {
            let dialect = Dialect { delimiter: *delimiter, quote: *quote };
            read_delimited(
                &lines,
                dialect,
                *header,
                text_column,
                label_column,
                &mut sink,
                &mut rows,
            )?;
        }
        Format::Jsonl { text_field, label_field } => {
            for (line, text) in nonblank(&lines, &mut sink.report) {
                match json_example(text, text_field, label_field) {
                    Ok(example) => rows.push((line, example)),
                    Err(reason) => sink.malformed(line, reason)?,
                }
            }
        }
    }
    let mut report = sink.report;
    report.read = rows.len();
    if rows.is_empty() {
        return Err(DataError::Empty { path: path.to_owned() });
    }
    Ok((rows, report))
}

/// Applies the malformed-row policy and keeps the report.
pub(crate) struct Sink {
    path: PathBuf,
    on_malformed: OnMalformed,
    pub(crate) report: ReadReport,
}

impl Sink {
    pub(crate) fn new(path: &Path, on_malformed: OnMalformed) -> Self {
        let report = ReadReport { path: path.to_owned(), ..ReadReport::default() };
        Self { path: path.to_owned(), on_malformed, report }
    }

    /// Records a malformed row: an error under `Stop`, an entry in the report under `Skip`.
    pub(crate) fn malformed(
        &mut self,
        line: usize,
        reason: impl Into<String>,
    ) -> Result<(), DataError> {
        let malformed = Malformed { path: self.path.clone(), line, reason: reason.into() };
        match self.on_malformed {
            OnMalformed::Stop => Err(DataError::Malformed(malformed)),
            OnMalformed::Skip => {
                self.report.skipped.push(malformed);
                Ok(())
            }
        }
    }
}

/// Splits on `\n`, drops a trailing `\r` and a leading UTF-8 byte-order mark, and decodes each
/// line as UTF-8 or, failing that, Windows-1252 (counted in the report).
fn decode_lines(bytes: &[u8], report: &mut ReadReport) -> Vec<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match std::str::from_utf8(line) {
                Ok(text) => text.to_string(),
                Err(_) => {
                    report.windows_1252_lines += 1;
                    decode_windows_1252(line)
                }
            }
        })
        .collect()
}

/// Windows-1252 as the WHATWG encoding standard defines it: Latin-1 except 0x80–0x9F, which
/// are mostly typographic characters; the five unassigned bytes map to the C1 controls.
pub(crate) fn decode_windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// The non-blank lines with their 1-based numbers; blank ones are counted.
fn nonblank<'a>(lines: &'a [String], report: &mut ReadReport) -> Vec<(usize, &'a str)> {
    let kept: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, line.as_str()))
        .collect();
    report.blank_lines += lines.len() - kept.len();
    kept
}

fn read_delimited(
    lines: &[String],
    dialect: Dialect,
    header: bool,
    text_column: &ColumnRef,
    label_column: &ColumnRef,
    sink: &mut Sink,
    rows: &mut Vec<(usize, Example)>,
) -> Result<(), DataError> {
    let mut records = Records::new(lines, dialect);
    let mut names = None;
    if header {
        loop {
            match records.next() {
                None => return Err(DataError::Empty { path: sink.path.clone() }),
                Some(Ok(record)) if record.is_blank() => sink.report.blank_lines += 1,
                Some(Ok(record)) => {
                    names = Some(record.fields.iter().map(|f| f.trim().to_string()).collect());
                    break;
                }
                // Without a header nothing can be read, so a malformed one stops under either
                // policy.
                Some(Err(error)) => {
                    let reason = format!("header: {}", error.reason);
                    let path = sink.path.clone();
                    return Err(DataError::Malformed(Malformed { path, line: error.line, reason }));
                }
            }
        }
    }
    let names: Option<Vec<String>> = names;
    let text_index = column_index(text_column, names.as_deref(), &sink.path)?;
    let label_index = column_index(label_column, names.as_deref(), &sink.path)?;
    let needed = text_index.max(label_index) + 1;
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                sink.malformed(error.line, error.reason)?;
                continue;
            }
        };
        if record.is_blank() {
            sink.report.blank_lines += 1;
            continue;
        }
        let fields = &record.fields;
        if fields.len() < needed {
            let reason = format!("expected at least {needed} fields, found {}", fields.len());
            sink.malformed(record.line, reason)?;
            continue;
        }
        let (text, label) = (fields[text_index].trim(), fields[label_index].trim());
        if text.is_empty() {
            sink.malformed(record.line, format!("empty text in column {}", text_index + 1))?;
        } else if label.is_empty() {
            sink.malformed(record.line, format!("empty label in column {}", label_index + 1))?;
        } else {
            rows.push((record.line, Example::new(text, label)));
        }
    }
    Ok(())
}

fn column_index(
    column: &ColumnRef,
    names: Option<&[String]>,
    path: &Path,
) -> Result<usize, DataError> {
    match (column, names) {
        (ColumnRef::Index(index), _) => Ok(*index),
        (ColumnRef::Name(name), Some(names)) => {
            names.iter().position(|n| n == name).ok_or_else(|| DataError::MissingColumn {
                path: path.to_owned(),
                column: name.clone(),
                available: names.to_vec(),
            })
        }
        (ColumnRef::Name(name), None) => {
            Err(DataError::NamedColumnWithoutHeader { column: name.clone() })
        }
    }
}

fn json_example(line: &str, text_field: &str, label_field: &str) -> Result<Example, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let object = value.as_object().ok_or("expected a JSON object")?;
    let text = match object.get(text_field) {
        Some(serde_json::Value::String(text)) if !text.trim().is_empty() => text.trim(),
        Some(serde_json::Value::String(_)) => return Err(format!("empty text in {text_field:?}")),
        Some(other) => return Err(format!("field {text_field:?} is not a string: {other}")),
        None => return Err(format!("no field {text_field:?}")),
    };
    let label = match object.get(label_field) {
        Some(serde_json::Value::String(label)) if !label.trim().is_empty() => {
            label.trim().to_string()
        }
        Some(serde_json::Value::String(_)) => {
            return Err(format!("empty label in {label_field:?}"));
        }
        Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            value.to_string()
        }
        Some(other) => {
            return Err(format!("label {label_field:?} is not a string or number: {other}"));
        }
        None => return Err(format!("no field {label_field:?}")),
    };
    Ok(Example::new(text, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_maps_typographic_bytes() {
        assert_eq!(decode_windows_1252(b"caf\xe9 \x85 \x93hi\x94 \x96"), "café … “hi” –");
        assert_eq!(decode_windows_1252(b"\x81\x9d\xff"), "\u{81}\u{9d}ÿ");
    }

    #[test]
    fn decoding_counts_fallback_lines_and_strips_crlf_and_bom() {
        let mut report = ReadReport::default();
        let lines = decode_lines(b"\xEF\xBB\xBFa\r\nb\xe9\n\nc", &mut report);
        assert_eq!(lines, ["a", "bé", "", "c"]);
        assert_eq!(report.windows_1252_lines, 1);
    }

    #[test]
    fn column_ref_parses_indices_and_names() {
        assert_eq!("3".parse::<ColumnRef>(), Ok(ColumnRef::Index(3)));
        assert_eq!("text".parse::<ColumnRef>(), Ok(ColumnRef::Name("text".into())));
    }

    #[test]
    fn json_labels_may_be_numbers_or_booleans() {
        let example = json_example(r#"{"t": " hi ", "y": 2}"#, "t", "y");
        assert_eq!(example, Ok(Example::new("hi", "2")));
        assert_eq!(
            json_example(r#"{"t": "hi", "y": true}"#, "t", "y"),
            Ok(Example::new("hi", "true"))
        );
        let error = json_example(r#"{"t": "hi", "y": null}"#, "t", "y").unwrap_err();
        assert!(error.contains("not a string or number"), "{error}");
        assert_eq!(json_example(r#"{"t": "hi"}"#, "t", "y"), Err("no field \"y\"".into()));
    }
}
