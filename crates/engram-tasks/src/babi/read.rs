//! Reading bAbI files: `ID text` lines, questions `ID question<TAB>answer<TAB>supporting ids`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{DataError, Malformed, OnMalformed};

/// One statement of a story, as memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    /// Its line id within the story (1-based, as in the file).
    pub id: usize,
    /// Lowercased words without the final punctuation.
    pub words: Vec<String>,
}

/// One question with the story it is asked about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaExample {
    /// The statements before the question, oldest first: at most the last `memory_size` of them.
    pub story: Vec<Sentence>,
    /// Lowercased question words without the question mark.
    pub question: Vec<String>,
    /// The answer words: one, or several for the list answers of tasks 8 and 19.
    pub answer: Vec<String>,
    /// Ids of the supporting statements, as written in the file.
    pub supporting: Vec<usize>,
    /// The 1-based line of the question in its file.
    pub line: usize,
}

impl QaExample {
    /// The answer as one class: the answer words joined by commas, as the file writes them.
    pub fn answer_label(&self) -> String {
        self.answer.join(",")
    }
}

/// Options of [`read_babi`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// Keep only the last this many statements before each question. Default: 50.
    pub memory_size: usize,
    /// What to do with a malformed line. Default: stop.
    pub on_malformed: OnMalformed,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { memory_size: 50, on_malformed: OnMalformed::Stop }
    }
}

/// What [`read_babi`] did with one file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BabiReadReport {
    /// The file.
    pub path: PathBuf,
    /// Stories read.
    pub stories: usize,
    /// Questions read.
    pub questions: usize,
    /// Malformed lines left out under [`OnMalformed::Skip`].
    pub skipped: Vec<Malformed>,
}

/// Reads one bAbI file.
///
/// # Errors
/// [`DataError::MissingFile`] if the file is not there, [`DataError::Io`] if it cannot be read,
/// [`DataError::Malformed`] (with file and line) for a malformed line under
/// [`OnMalformed::Stop`], [`DataError::Empty`] if it holds no question.
pub fn read_babi(
    path: &Path,
    options: ReadOptions,
) -> Result<(Vec<QaExample>, BabiReadReport), DataError> {
    if !path.exists() {
        return Err(DataError::MissingFile { path: path.to_owned(), folder: "babi" });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let (examples, report) = parse_babi(&text, path, options)?;
    if examples.is_empty() {
        return Err(DataError::Empty { path: path.to_owned() });
    }
    Ok((examples, report))
}

/// Parses the text of a bAbI file; `path` only names it in errors and the report.
///
/// # Errors
/// As [`read_babi`], except that an empty text is not an error here.
pub fn parse_babi(
    text: &str,
    path: &Path,
    options: ReadOptions,
) -> Result<(Vec<QaExample>, BabiReadReport), DataError> {
    let mut report = BabiReadReport { path: path.to_owned(), ..Default::default() };
    let mut examples = Vec::new();
    let mut story: Vec<Sentence> = Vec::new();
    let mut last_id = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let malformed = |reason: String| Malformed { path: path.to_owned(), line, reason };
        let parsed = parse_line(raw, last_id).map_err(malformed);
        let parsed = match (parsed, options.on_malformed) {
            (Ok(parsed), _) => parsed,
            (Err(m), OnMalformed::Stop) => return Err(DataError::Malformed(m)),
            (Err(m), OnMalformed::Skip) => {
                report.skipped.push(m);
                continue;
            }
        };
        if parsed.id == 1 {
            story.clear();
            report.stories += 1;
        }
        last_id = parsed.id;
        match parsed.qa {
            None => story.push(Sentence { id: parsed.id, words: parsed.words }),
            Some((answer, supporting)) => {
                let start = story.len().saturating_sub(options.memory_size);
                examples.push(QaExample {
                    story: story[start..].to_vec(),
                    question: parsed.words,
                    answer,
                    supporting,
                    line,
                });
                report.questions += 1;
            }
        }
    }
    Ok((examples, report))
}

struct Line {
    id: usize,
    words: Vec<String>,
    qa: Option<(Vec<String>, Vec<usize>)>,
}

fn parse_line(raw: &str, last_id: usize) -> Result<Line, String> {
    let raw = raw.trim_end_matches(['\r', '\n']);
    let (id, rest) = raw
        .trim_start()
        .split_once(' ')
        .ok_or_else(|| format!("expected `ID text`, got {raw:?}"))?;
    let id: usize = id.parse().map_err(|_| format!("line id {id:?} is not a positive integer"))?;
    if id == 0 {
        return Err("line id 0; ids start at 1".into());
    }
    if id != 1 && id != last_id + 1 {
        return Err(format!("line id {id} does not follow {last_id} (a story starts at 1)"));
    }
    let fields: Vec<&str> = rest.split('\t').collect();
    let qa = match fields.len() {
        1 => None,
        2 | 3 => {
            let answer: Vec<String> = fields[1]
                .split(',')
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect();
            if answer.is_empty() {
                return Err("question with an empty answer".into());
            }
            let supporting = fields
                .get(2)
                .map(|s| {
                    s.split_whitespace()
                        .map(|f| match f.parse::<usize>() {
                            Ok(n) if n >= 1 && n < id => Ok(n),
                            _ => Err(format!(
                                "supporting fact {f:?} is not the id of an earlier line (< {id})"
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            Some((answer, supporting))
        }
        n => return Err(format!("expected at most 3 tab-separated fields, got {n}")),
    };
    let words = tokenize(fields[0]);
    if words.is_empty() {
        return Err("no words".into());
    }
    Ok(Line { id, words, qa })
}

/// Lowercased words of a bAbI sentence, `.`, `?` and `,` dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '.' | '?' | ',' | '!'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}
