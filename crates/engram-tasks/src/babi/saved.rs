//! A trained bAbI model on disk (`babi.json` with the architecture and vocabulary, `model.bpk`
//! with the weights), evaluation, and `ask`: the answer and the attention of every hop over the
//! story's statements, as text and as an SVG heatmap.

use std::fs;
use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use engram_tensor::softmax;
use serde::{Deserialize, Serialize};

use super::encode::{HostBatch, Vocab};
use super::model::{BabiModel, ModelSpec};
use super::read::{QaExample, Sentence, tokenize};
use super::train::evaluate;
use crate::classify::TaskError;
use crate::train::{CheckpointError, write_atomically};

/// A model with what it needs to read text.
#[derive(Debug)]
pub struct TrainedBabi {
    /// The architecture.
    pub spec: ModelSpec,
    /// The vocabulary (answers are entries of it).
    pub vocab: Vocab,
    /// The weights.
    pub model: BabiModel,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedMeta {
    spec: ModelSpec,
    vocab: Vec<String>,
}

/// The answer to one question and where the model looked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asked {
    /// The answer (a label; list answers are comma-joined).
    pub answer: String,
    /// Its probability.
    pub probability: f64,
    /// The statements in memory, oldest first.
    pub statements: Vec<String>,
    /// `hops[k][i]`: attention of hop `k` on statement `i` (same order as `statements`).
    pub hops: Vec<Vec<f64>>,
}

fn io(path: &Path, source: std::io::Error) -> TaskError {
    TaskError::Checkpoint(CheckpointError::Io { path: path.to_path_buf(), source })
}

fn invalid(path: &Path, message: impl ToString) -> TaskError {
    TaskError::Checkpoint(CheckpointError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    })
}

impl TrainedBabi {
    /// Writes `babi.json` and `model.bpk` into `dir` (created if needed), each atomically.
    ///
    /// # Errors
    /// If a file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<(), TaskError> {
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let meta = SavedMeta { spec: self.spec.clone(), vocab: self.vocab.words().to_vec() };
        let json = serde_json::to_string_pretty(&meta).expect("metadata serialises");
        write_atomically(&dir.join("babi.json"), json.as_bytes())?;
        let bytes = self.model.clone().into_record().into_bytes();
        let bytes = bytes.map_err(|e| invalid(&dir.join("model.bpk"), e))?;
        write_atomically(&dir.join("model.bpk"), &bytes)?;
        Ok(())
    }

    /// Loads a directory written by [`TrainedBabi::save`].
    ///
    /// # Errors
    /// If it is not a bAbI model directory or a file is unreadable or inconsistent.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TaskError> {
        let meta_path = dir.join("babi.json");
        if !meta_path.exists() {
            return Err(invalid(dir, "not a bAbI model directory (no babi.json)"));
        }
        let text = fs::read_to_string(&meta_path).map_err(|e| io(&meta_path, e))?;
        let meta: SavedMeta = serde_json::from_str(&text).map_err(|e| invalid(&meta_path, e))?;
        let path = dir.join("model.bpk");
        let bytes = fs::read(&path).map_err(|e| io(&path, e))?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| invalid(&path, e))?;
        let vocab = Vocab::from_words(meta.vocab);
        let model = meta
            .spec
            .init(vocab.len(), device)
            .try_load_record(record)
            .map_err(|e| invalid(&path, e))?;
        Ok(Self { spec: meta.spec, vocab, model })
    }

    /// Test error (1 − accuracy) on `examples`.
    pub fn error(&self, examples: &[QaExample], device: &Device) -> f64 {
        evaluate(&self.model, examples, &self.vocab, self.spec.memory_size, false, device).0
    }

    /// Answers `question` about `story` (one statement per line, an optional leading line id as
    /// in bAbI files; blank lines ignored; only the last `memory_size` statements are read).
    pub fn ask(&self, story: &str, question: &str, device: &Device) -> Asked {
        let statements: Vec<&str> = story
            .lines()
            .map(|l| {
                let l = l.trim();
                match l.split_once(' ') {
                    Some((id, rest)) if id.parse::<usize>().is_ok() => rest.trim(),
                    _ => l,
                }
            })
            .filter(|l| !l.is_empty())
            .collect();
        let start = statements.len().saturating_sub(self.spec.memory_size);
        let statements = &statements[start..];
        let example = QaExample {
            story: statements
                .iter()
                .enumerate()
                .map(|(i, s)| Sentence { id: i + 1, words: tokenize(s) })
                .collect(),
            question: tokenize(question),
            answer: vec![String::new()],
            supporting: Vec::new(),
            line: 0,
        };
        let mut rng = engram_tensor::seed_everything(device, 0);
        let host = HostBatch::new(&[&example], &self.vocab, 0.0, self.spec.memory_size, &mut rng);
        let out = self.model.answer(&host, false, device);
        let probs = softmax(out.logits, 1).into_data().convert::<f32>().try_to_vec::<f32>();
        let probs = probs.unwrap_or_default();
        let (best, p) = probs
            .iter()
            .enumerate()
            .skip(1)
            .fold((0, f32::MIN), |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc });
        let n = statements.len();
        let hops = out
            .attention
            .into_iter()
            .map(|a| {
                let slots = a.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
                // Slot m holds statement n - 1 - m (most recent first).
                (0..n).map(|i| f64::from(slots.get(n - 1 - i).copied().unwrap_or(0.0))).collect()
            })
            .collect();
        Asked {
            answer: self.vocab.word(best).to_owned(),
            probability: f64::from(p),
            statements: statements.iter().map(|s| (*s).to_owned()).collect(),
            hops,
        }
    }
}

impl Asked {
    /// A text table: one row per statement, one attention column per hop.
    pub fn to_text(&self) -> String {
        let mut out = format!("answer: {} (p = {:.3})\n", self.answer, self.probability);
        out.push_str(&(1..=self.hops.len()).map(|k| format!(" hop {k}")).collect::<String>());
        out.push_str("  statement\n");
        for (i, s) in self.statements.iter().enumerate() {
            for hop in &self.hops {
                out.push_str(&format!(" {:>5.3}", hop[i]));
            }
            out.push_str(&format!("  {s}\n"));
        }
        out
    }

    /// A heatmap, statements down and hops across, darker for more attention.
    pub fn to_svg(&self) -> String {
        let (cell_w, cell_h, text_x) = (48.0, 20.0, 0.0);
        let hops = self.hops.len();
        let label_w = 9.0 * self.statements.iter().map(|s| s.len()).max().unwrap_or(10) as f64;
        let width = text_x + hops as f64 * cell_w + label_w + 20.0;
        let height = (self.statements.len() + 2) as f64 * cell_h + 10.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n"
        );
        svg.push_str(&format!(
            "<text x=\"4\" y=\"14\">answer: {} (p = {:.3})</text>\n",
            escape(&self.answer),
            self.probability
        ));
        for k in 0..hops {
            let x = k as f64 * cell_w;
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\">hop {}</text>\n",
                x + 6.0,
                2.0 * cell_h - 4.0,
                k + 1
            ));
        }
        for (i, s) in self.statements.iter().enumerate() {
            let y = (i + 2) as f64 * cell_h;
            for (k, hop) in self.hops.iter().enumerate() {
                let w = hop[i].clamp(0.0, 1.0);
                let shade = (255.0 * (1.0 - w)).round() as u8;
                svg.push_str(&format!(
                    "<rect x=\"{}\" y=\"{y}\" width=\"{cell_w}\" height=\"{cell_h}\" \
                     fill=\"rgb({shade},{shade},255)\" stroke=\"#ccc\"><title>{w:.3}</title></rect>\n",
                    k as f64 * cell_w
                ));
            }
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\">{}</text>\n",
                hops as f64 * cell_w + 8.0,
                y + 14.0,
                escape(s)
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
