//! Tokenisers trained on a training split with Hugging Face `tokenizers`, saved as a standard
//! `tokenizer.json` that Python's `tokenizers.Tokenizer.from_file` loads.
//!
//! Two models: word-level (every distinct word of the training text, most frequent first) and
//! BPE (Sennrich et al.'s byte-pair merges with a `</w>` end-of-word suffix). Both normalise with
//! BERT's normaliser (control characters removed, optional lower-casing and accent stripping)
//! and pre-tokenise with BERT's pre-tokeniser, which splits on whitespace and punctuation. The
//! special tokens come first, with fixed ids: `[PAD]` 0, `[UNK]` 1, `[CLS]` 2, `[SEP]` 3,
//! `[MASK]` 4. [`Tokenizer::encode`] adds none of them and neither pads nor truncates; the
//! caller does, with [`Tokenizer::cls_id`] and [`Tokenizer::pad_id`].
//!
//! ```
//! use engram_tasks::tokenizer::{Tokenizer, TokenizerConfig};
//!
//! let texts = ["A fine film.", "A dull film!", "fine , fine"];
//! let tokenizer = Tokenizer::train(&TokenizerConfig::default(), texts.iter().copied()).unwrap();
//! // Ids 0-4 are the specials, then the words by count, ties in byte order: "fine" (3 times),
//! // "a" and "film" (2), then "!", ",", "." and "dull" (1).
//! assert_eq!(tokenizer.encode("Fine film"), [5, 7]);
//! assert_eq!(tokenizer.encode("a great film ."), [6, tokenizer.unk_id(), 7, 10]);
//! assert_eq!(tokenizer.vocab_size(), 12);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tokenizers::decoders::bpe::BPEDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, DecoderWrapper};

/// The special tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The end-of-word suffix of BPE tokens.
const BPE_SUFFIX: &str = "</w>";

/// Which subword model to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenizerKind {
    /// One token per distinct word (the default).
    #[default]
    WordLevel,
    /// Byte-pair encoding merges over characters.
    Bpe,
}

impl FromStr for TokenizerKind {
    type Err = TokenizerError;

    /// `word-level` or `bpe`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "word-level" => Ok(Self::WordLevel),
            "bpe" => Ok(Self::Bpe),
            _ => Err(TokenizerError::InvalidConfig(format!(
                "unknown tokenizer kind {s:?}; expected word-level or bpe"
            ))),
        }
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WordLevel => "word-level",
            Self::Bpe => "bpe",
        })
    }
}

/// How to train a tokeniser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenizerConfig {
    /// The model (default word-level).
    pub kind: TokenizerKind,
    /// The most tokens, special tokens included (default 20,000). Word-level keeps the most
    /// frequent words; BPE stops merging there (its alphabet may already exceed it).
    pub vocab_size: usize,
    /// Words (word-level) or pairs (BPE) seen fewer times are left out (default 1: keep all).
    pub min_frequency: u64,
    /// Lower-case the text before anything else (default true).
    pub lowercase: bool,
    /// Remove accents: NFD, then drop combining marks (default false).
    pub strip_accents: bool,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            kind: TokenizerKind::WordLevel,
            vocab_size: 20_000,
            min_frequency: 1,
            lowercase: true,
            strip_accents: false,
        }
    }
}

/// Errors from training, saving and loading tokenisers.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A tokenizer file could not be read or written.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not a tokenizer that `tokenizers` can parse.
    #[error("{} is not a valid tokenizer.json: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What `tokenizers` reported.
        message: String,
    },
    /// A loaded tokenizer lacks one of [`SPECIAL_TOKENS`].
    #[error("{} has no {token} token; engram needs {}", path.display(), SPECIAL_TOKENS.join(", "))]
    MissingSpecialToken {
        /// The file.
        path: PathBuf,
        /// The missing token.
        token: &'static str,
    },
    /// `tokenizers` failed while training or serialising.
    #[error("tokenizer {op} failed: {message}")]
    Tokenizers {
        /// `training` or `serialisation`.
        op: &'static str,
        /// What `tokenizers` reported.
        message: String,
    },
    /// A configuration value that cannot work.
    #[error("invalid tokenizer configuration: {0}")]
    InvalidConfig(String),
}

/// A trained tokeniser: Hugging Face's `tokenizers::Tokenizer` with engram's special tokens.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Ids of [`SPECIAL_TOKENS`], in that order.
    special: [u32; 5],
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Trains a tokeniser on `texts` (the training split only, so that nothing of the test set
    /// leaks into the vocabulary).
    ///
    /// # Errors
    ///
    /// [`TokenizerError::InvalidConfig`] if `vocab_size` leaves no room beyond the special
    /// tokens; [`TokenizerError::Tokenizers`] if training fails.
    pub fn train<I, S>(config: &TokenizerConfig, texts: I) -> Result<Self, TokenizerError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if config.vocab_size <= SPECIAL_TOKENS.len() {
            return Err(TokenizerError::InvalidConfig(format!(
                "vocab_size {} leaves no room beyond the {} special tokens",
                config.vocab_size,
                SPECIAL_TOKENS.len()
            )));
        }
        let specials: Vec<AddedToken> =
            SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect();
        let unk = SPECIAL_TOKENS[1].to_string();
        let failed = |e: tokenizers::Error| TokenizerError::Tokenizers {
            op: "training",
            message: e.to_string(),
        };
        let (model, mut trainer, decoder): (ModelWrapper, TrainerWrapper, Option<DecoderWrapper>) =
            match config.kind {
                TokenizerKind::WordLevel => {
                    let model = WordLevel::builder().unk_token(unk).build().map_err(failed)?;
                    let trainer = WordLevelTrainer::builder()
                        .vocab_size(config.vocab_size)
                        .min_frequency(config.min_frequency)
                        .show_progress(false)
                        .special_tokens(specials)
                        .build()
                        .map_err(|e| TokenizerError::Tokenizers {
                            op: "training",
                            message: e.to_string(),
                        })?;
                    (model.into(), trainer.into(), None)
                }
                TokenizerKind::Bpe => {
                    let model = BPE::builder()
                        .unk_token(unk)
                        .end_of_word_suffix(BPE_SUFFIX.into())
                        .build()
                        .map_err(failed)?;
                    let trainer = BpeTrainer::builder()
                        .vocab_size(config.vocab_size)
                        .min_frequency(config.min_frequency)
                        .show_progress(false)
                        .special_tokens(specials)
                        .end_of_word_suffix(BPE_SUFFIX.into())
                        .build();
                    let decoder = BPEDecoder::new(BPE_SUFFIX.into());
                    (model.into(), trainer.into(), Some(decoder.into()))
                }
            };
        let mut inner = tokenizers::Tokenizer::new(model);
        inner
            .with_normalizer(Some(BertNormalizer::new(
                true,
                true,
                Some(config.strip_accents),
                config.lowercase,
            )))
            .with_pre_tokenizer(Some(BertPreTokenizer))
            .with_decoder(decoder);
        let texts: Vec<String> = texts.into_iter().map(|t| t.as_ref().to_string()).collect();
        inner.train(&mut trainer, texts.into_iter()).map_err(failed)?;
        Ok(Self { inner, special: [0, 1, 2, 3, 4] })
    }

    /// Writes the tokeniser as a `tokenizer.json` (pretty-printed JSON).
    ///
    /// # Errors
    ///
    /// [`TokenizerError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        let json = self.inner.to_string(true).map_err(|e| TokenizerError::Tokenizers {
            op: "serialisation",
            message: e.to_string(),
        })?;
        std::fs::write(path, json).map_err(|source| TokenizerError::Io {
            op: "write",
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a `tokenizer.json`: one written by [`Self::save`], or any other that has the
    /// [`SPECIAL_TOKENS`] (their ids are looked up, not assumed).
    ///
    /// # Errors
    ///
    /// [`TokenizerError::Io`], [`TokenizerError::Parse`], or
    /// [`TokenizerError::MissingSpecialToken`].
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let json = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        })?;
        let inner = tokenizers::Tokenizer::from_str(&json)
            .map_err(|e| TokenizerError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let mut special = [0; 5];
        for (id, token) in special.iter_mut().zip(SPECIAL_TOKENS) {
            *id = inner
                .token_to_id(token)
                .ok_or(TokenizerError::MissingSpecialToken { path: path.to_owned(), token })?;
        }
        Ok(Self { inner, special })
    }

    /// The token ids of `text`: no special tokens added, no padding, no truncation.
    ///
    /// # Panics
    ///
    /// If `tokenizers` fails to encode, which a tokeniser with an `[UNK]` token (all that
    /// [`Self::train`] and [`Self::load`] return) does not.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.inner.encode(text, false) {
            Ok(encoding) => encoding.get_ids().to_vec(),
            Err(e) => panic!("Tokenizer::encode: tokenizers failed on {text:?}: {e}"),
        }
    }

    /// The tokens of `ids` joined back into text (special tokens left out).
    ///
    /// # Panics
    ///
    /// If `tokenizers` fails to decode, which the decoders used here do not.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self.inner.decode(ids, true) {
            Ok(text) => text,
            Err(e) => panic!("Tokenizer::decode: tokenizers failed on {ids:?}: {e}"),
        }
    }

    /// The number of token ids, special tokens included: the embedding table's size.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token of `id`, if there is one.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of `[PAD]` (0 for a trained tokeniser).
    pub fn pad_id(&self) -> u32 {
        self.special[0]
    }

    /// The id of `[UNK]` (1 for a trained tokeniser), given to words outside the vocabulary.
    pub fn unk_id(&self) -> u32 {
        self.special[1]
    }

    /// The id of `[CLS]` (2 for a trained tokeniser).
    pub fn cls_id(&self) -> u32 {
        self.special[2]
    }

    /// The id of `[SEP]` (3 for a trained tokeniser).
    pub fn sep_id(&self) -> u32 {
        self.special[3]
    }

    /// The id of `[MASK]` (4 for a trained tokeniser).
    pub fn mask_id(&self) -> u32 {
        self.special[4]
    }

    /// The wrapped Hugging Face tokeniser.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
