//! Tokenisers: training options, special-token ids, save/load round trips and load errors.

use std::path::PathBuf;

use engram_tasks::tokenizer::{
    SPECIAL_TOKENS, Tokenizer, TokenizerConfig, TokenizerError, TokenizerKind,
};

const TEXTS: [&str; 4] = [
    "The cat sat on the mat.",
    "The dog sat on the log!",
    "A cat and a dog, together.",
    "Cats and dogs sat; the end.",
];

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("engram-tok-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn word_level() -> Tokenizer {
    Tokenizer::train(&TokenizerConfig::default(), TEXTS).unwrap()
}

fn bpe(vocab_size: usize) -> Tokenizer {
    let config = TokenizerConfig { kind: TokenizerKind::Bpe, vocab_size, ..Default::default() };
    Tokenizer::train(&config, TEXTS).unwrap()
}

#[test]
fn special_tokens_have_fixed_ids() {
    for tokenizer in [word_level(), bpe(100)] {
        let ids = [
            tokenizer.pad_id(),
            tokenizer.unk_id(),
            tokenizer.cls_id(),
            tokenizer.sep_id(),
            tokenizer.mask_id(),
        ];
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tokenizer.id_to_token(id as u32).as_deref(), Some(*token));
        }
        // A special token written in the text is that token, not its characters.
        assert_eq!(tokenizer.encode("[CLS]"), [2]);
    }
}

#[test]
fn word_level_splits_punctuation_and_lowercases() {
    let tokenizer = word_level();
    let ids = tokenizer.encode("THE cat, sat!");
    let tokens: Vec<String> = ids.iter().map(|&id| tokenizer.id_to_token(id).unwrap()).collect();
    assert_eq!(tokens, ["the", "cat", ",", "sat", "!"]);
    // "the" is the most frequent word (5 times), so it gets the first id after the specials.
    assert_eq!(ids[0], 5);
    assert_eq!(tokenizer.encode("zebra cat"), [tokenizer.unk_id(), ids[1]]);
    assert!(tokenizer.encode("").is_empty());
}

#[test]
fn case_and_accent_options_change_the_vocabulary() {
    let texts = ["Café café", "CAFÉ"];
    let lower = Tokenizer::train(&TokenizerConfig::default(), texts).unwrap();
    assert_eq!(lower.vocab_size(), 5 + 1);
    let cased = TokenizerConfig { lowercase: false, ..Default::default() };
    assert_eq!(Tokenizer::train(&cased, texts).unwrap().vocab_size(), 5 + 3);
    let plain = TokenizerConfig { strip_accents: true, ..Default::default() };
    let plain = Tokenizer::train(&plain, texts).unwrap();
    assert_eq!(plain.vocab_size(), 5 + 1);
    assert!(plain.token_to_id("cafe").is_some());
    assert!(lower.token_to_id("café").is_some());
}

#[test]
fn vocab_size_and_min_frequency_limit_word_level() {
    let small = TokenizerConfig { vocab_size: 7, ..Default::default() };
    let small = Tokenizer::train(&small, TEXTS).unwrap();
    assert_eq!(small.vocab_size(), 7);
    let frequent = TokenizerConfig { min_frequency: 3, ..Default::default() };
    let frequent = Tokenizer::train(&frequent, TEXTS).unwrap();
    // Tokens seen at least 3 times: "the" (5), "sat" and "." (3 each).
    assert_eq!(frequent.vocab_size(), 5 + 3);
    assert!(frequent.token_to_id("sat").is_some() && frequent.token_to_id("cat").is_none());
}

#[test]
fn bpe_builds_unseen_words_from_pieces() {
    let tokenizer = bpe(60);
    assert!(tokenizer.vocab_size() <= 60);
    let ids = tokenizer.encode("catdog");
    assert!(ids.len() >= 2, "{ids:?}");
    assert!(!ids.contains(&tokenizer.unk_id()), "{ids:?}");
    assert_eq!(tokenizer.decode(&tokenizer.encode("the cat sat")), "the cat sat");
}

#[test]
fn save_then_load_gives_the_same_tokenizer() {
    let dir = scratch("round-trip");
    let probe = "The cat and the zebra sat, together; CATS!";
    for (name, tokenizer) in [("word", word_level()), ("bpe", bpe(80))] {
        let path = dir.join(format!("{name}.json"));
        tokenizer.save(&path).unwrap();
        let loaded = Tokenizer::load(&path).unwrap();
        assert_eq!(loaded.encode(probe), tokenizer.encode(probe), "{name}");
        assert_eq!(loaded.vocab_size(), tokenizer.vocab_size(), "{name}");
        assert_eq!(loaded.cls_id(), 2);
        // The file is a standard tokenizer.json: a model, normaliser and pre-tokeniser that
        // Python's `tokenizers` knows by these type names.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let model = if name == "word" { "WordLevel" } else { "BPE" };
        assert_eq!(json["model"]["type"], model);
        assert_eq!(json["normalizer"]["type"], "BertNormalizer");
        assert_eq!(json["pre_tokenizer"]["type"], "BertPreTokenizer");
        assert_eq!(json["added_tokens"][0]["content"], "[PAD]");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_errors_say_what_and_where() {
    let dir = scratch("errors");
    let missing = dir.join("missing.json");
    let error = Tokenizer::load(&missing).unwrap_err();
    assert!(matches!(&error, TokenizerError::Io { op: "read", path, .. } if *path == missing));

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"not\": \"a tokenizer\"}").unwrap();
    let error = Tokenizer::load(&garbage).unwrap_err();
    assert!(error.to_string().starts_with(&format!("{} is not a valid", garbage.display())));

    let no_mask = dir.join("no-mask.json");
    word_level().save(&no_mask).unwrap();
    let json = std::fs::read_to_string(&no_mask).unwrap().replace("[MASK]", "[MASQUE]");
    std::fs::write(&no_mask, json).unwrap();
    let error = Tokenizer::load(&no_mask).unwrap_err();
    assert!(matches!(error, TokenizerError::MissingSpecialToken { token: "[MASK]", .. }));

    let error = word_level().save(&dir.join("no-such-dir/t.json")).unwrap_err();
    assert!(matches!(error, TokenizerError::Io { op: "write", .. }));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_is_checked_and_serialises() {
    let tiny = TokenizerConfig { vocab_size: 5, ..Default::default() };
    assert!(matches!(Tokenizer::train(&tiny, TEXTS), Err(TokenizerError::InvalidConfig(_))));
    assert_eq!("bpe".parse::<TokenizerKind>().unwrap(), TokenizerKind::Bpe);
    assert!("sentencepiece".parse::<TokenizerKind>().is_err());
    let config: TokenizerConfig = serde_json::from_str(r#"{"kind": "bpe"}"#).unwrap();
    assert_eq!(config, TokenizerConfig { kind: TokenizerKind::Bpe, ..Default::default() });
}
