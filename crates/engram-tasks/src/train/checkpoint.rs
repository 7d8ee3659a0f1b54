//! Checkpoints written atomically after every epoch, and the state a resumed run starts from.
//!
//! Each epoch writes `model-E.bpk` and `optimizer-E.bpk` (burnpack), `best-E.bpk` when the best
//! epoch changes, then `state.json`, which names them: `state.json` is replaced last and by
//! rename, so a run killed at any moment leaves either the previous epoch's complete checkpoint
//! or the new one, never a mix. Files no longer named are removed afterwards.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::EpochLog;
use crate::model::Classifier;

/// A checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not what the checkpoint expects.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so that
/// readers see the old file or the new one, never a partial write.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)
}

#[derive(Serialize, Deserialize)]
struct State {
    model: String,
    optimizer: String,
    best: String,
    best_epoch: usize,
    best_accuracy: f64,
    history: Vec<EpochLog>,
}

/// What [`Checkpoints::load`] restores.
pub struct Resumed {
    /// The model after the last completed epoch.
    pub model: Classifier,
    /// The optimiser's state then.
    pub optimizer: ModuleOptimizer,
    /// The epochs done.
    pub history: Vec<EpochLog>,
    /// The best epoch so far.
    pub best_epoch: usize,
    /// Its validation accuracy.
    pub best_accuracy: f64,
    /// Its model.
    pub best_model: Classifier,
}

/// A checkpoint directory.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    /// Checkpoints in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Checkpoints { dir: dir.into() }
    }

    /// The file that marks a complete checkpoint.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> CheckpointError {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path: path.clone(), source }
    }

    fn invalid(path: &Path, message: impl ToString) -> CheckpointError {
        CheckpointError::Invalid { path: path.to_path_buf(), message: message.to_string() }
    }

    fn write_module(&self, name: &str, model: &Classifier) -> Result<(), CheckpointError> {
        let path = self.dir.join(name);
        let bytes =
            model.clone().into_record().into_bytes().map_err(|e| Self::invalid(&path, e))?;
        write_atomically(&path, &bytes)
    }

    fn read_bytes(&self, name: &str) -> Result<(PathBuf, Bytes), CheckpointError> {
        let path = self.dir.join(name);
        let bytes = fs::read(&path).map_err(self.io(&path))?;
        Ok((path, Bytes::from_bytes_vec(bytes)))
    }

    /// Saves the state after the last epoch of `history`.
    pub fn save(
        &self,
        model: &Classifier,
        optimizer: &ModuleOptimizer,
        history: &[EpochLog],
        best_epoch: usize,
        best_accuracy: f64,
        best_model: &Classifier,
    ) -> Result<(), CheckpointError> {
        fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let epoch = history.len();
        let state = State {
            model: format!("model-{epoch}.bpk"),
            optimizer: format!("optimizer-{epoch}.bpk"),
            best: format!("best-{best_epoch}.bpk"),
            best_epoch,
            best_accuracy,
            history: history.to_vec(),
        };
        self.write_module(&state.model, model)?;
        let path = self.dir.join(&state.optimizer);
        let bytes = optimizer.into_bytes().map_err(|e| Self::invalid(&path, e))?;
        write_atomically(&path, &bytes)?;
        if !self.dir.join(&state.best).exists() {
            self.write_module(&state.best, best_model)?;
        }
        let json = serde_json::to_vec_pretty(&state).expect("the state serialises");
        write_atomically(&self.state_path(), &json)?;
        // Only now are older files unreferenced.
        let keep = [&state.model, &state.optimizer, &state.best];
        for entry in fs::read_dir(&self.dir).map_err(self.io(&self.dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".bpk") && !keep.iter().any(|k| **k == name) {
                fs::remove_file(entry.path()).map_err(self.io(&entry.path()))?;
            }
        }
        Ok(())
    }

    /// Restores the last complete checkpoint into `model` and `optimizer` (fresh ones of the same
    /// configuration); `None` when the directory holds none.
    pub fn load(
        &self,
        model: Classifier,
        optimizer: ModuleOptimizer,
    ) -> Result<Option<Resumed>, CheckpointError> {
        let state_path = self.state_path();
        let json = match fs::read(&state_path) {
            Ok(json) => json,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(self.io(&state_path)(err)),
        };
        let state: State =
            serde_json::from_slice(&json).map_err(|e| Self::invalid(&state_path, e))?;
        let load = |name: &str, into: Classifier| -> Result<Classifier, CheckpointError> {
            let (path, bytes) = self.read_bytes(name)?;
            let record = ModuleRecord::from_bytes(bytes).map_err(|e| Self::invalid(&path, e))?;
            into.try_load_record(record).map_err(|e| Self::invalid(&path, e))
        };
        let best_model = load(&state.best, model.clone())?;
        let model = load(&state.model, model)?;
        let (path, bytes) = self.read_bytes(&state.optimizer)?;
        let optimizer = optimizer.from_bytes(bytes).map_err(|e| Self::invalid(&path, e))?;
        Ok(Some(Resumed {
            model,
            optimizer,
            history: state.history,
            best_epoch: state.best_epoch,
            best_accuracy: state.best_accuracy,
            best_model,
        }))
    }
}
