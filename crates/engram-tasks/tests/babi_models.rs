//! bAbI models: MemN2N's position and temporal encodings against hand-computed values, every
//! reader kind learning a tiny single-supporting-fact task, saving, loading and `ask`.

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use engram_tasks::babi::memn2n::MemoryBatch;
use engram_tasks::babi::{
    BabiTrainConfig, HostBatch, MemN2NConfig, ModelKind, QaExample, SentenceEncoding, TrainedBabi,
    Vocab, evaluate, parse_babi, read::ReadOptions, train_babi,
};
use engram_tensor::testing::test_device;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};

fn matrix(rows: &[[f32; 2]]) -> Param<Tensor<2>> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(flat, [rows.len(), 2]), &test_device()))
}

fn story(text: &str) -> Vec<QaExample> {
    parse_babi(text, std::path::Path::new("t.txt"), ReadOptions::default()).unwrap().0
}

/// Linear-start attention scores of the first hop, `m_i · u`, for one question.
fn first_hop_scores(encoding: SentenceEncoding, temporal: bool, text: &str) -> Vec<f32> {
    let device = test_device();
    let qa = story(text);
    // Vocabulary: <pad>, a, b, and the answer label "x".
    let vocab = Vocab::from_words(["<pad>", "a", "b", "x"].map(String::from).to_vec());
    let mut net = MemN2NConfig::new(4)
        .with_d_model(2)
        .with_n_hops(1)
        .with_memory_size(3)
        .with_encoding(encoding)
        .with_temporal(temporal)
        .init(&device);
    net.embeddings[0] = matrix(&[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]);
    if temporal {
        net.temporal[0] = matrix(&[[10.0, 0.0], [20.0, 0.0], [30.0, 0.0]]);
    }
    let mut rng = StdRng::seed_from_u64(0);
    let host = HostBatch::new(&[&qa[0]], &vocab, 0.0, 3, &mut rng);
    let batch = MemoryBatch::new(&host, 2, encoding == SentenceEncoding::Position, &device);
    let out = net.forward(&batch, true);
    out.attention[0].clone().into_data().try_to_vec::<f32>().unwrap()
}

fn assert_near(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

#[test]
fn temporal_encoding_adds_one_vector_per_slot_most_recent_first() {
    let text = "1 a\n2 b\n3 a?\tx\n";
    // u = A[a] = [1, 0]. Slot 0 is the most recent statement "b": A[b] + T[0] = [10, 1];
    // slot 1 is "a": A[a] + T[1] = [21, 0]. Scores m·u: [10, 21].
    assert_near(&first_hop_scores(SentenceEncoding::BagOfWords, true, text), &[10.0, 21.0]);
    // Without temporal encoding: [A[b]·u, A[a]·u] = [0, 1].
    assert_near(&first_hop_scores(SentenceEncoding::BagOfWords, false, text), &[0.0, 1.0]);
}

#[test]
fn position_encoding_weights_each_word_by_its_place() {
    // Statement "a b" (J = 2, d = 2): l_1 = [1.25, 0.75], l_2 = [0.75, 1.25]:
    // m = l_1 ⊙ [1, 0] + l_2 ⊙ [0, 1] = [1.25, 1.25]. Question "a" (J = 1): l_1 = [1, 1], so
    // u = [1, 0]. Score: 1.25. With bag of words: m = [1, 1], u = [1, 0], score 1.
    let text = "1 a b\n2 a?\tx\n";
    assert_near(&first_hop_scores(SentenceEncoding::Position, false, text), &[1.25]);
    assert_near(&first_hop_scores(SentenceEncoding::BagOfWords, false, text), &[1.0]);
}

/// A single-supporting-fact task: four people move between four places; where is one of them?
fn synthetic(n: usize, seed: u64) -> Vec<QaExample> {
    let people = ["mary", "john", "sandra", "daniel"];
    let places = ["kitchen", "garden", "office", "hallway"];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = String::new();
    for _ in 0..n {
        let mut at = std::collections::BTreeMap::new();
        for id in 1..=4 {
            let who = *people.choose(&mut rng).unwrap();
            let place = *places.choose(&mut rng).unwrap();
            at.insert(who, (place, id));
            text.push_str(&format!("{id} {who} went to the {place}.\n"));
        }
        let known: Vec<_> = at.iter().collect();
        let (who, (place, support)) = known[rng.random_range(0..known.len())];
        text.push_str(&format!("5 Where is {who}?\t{place}\t{support}\n"));
    }
    story(&text)
}

fn learns(kind: ModelKind, epochs: usize) {
    learns_with(kind, epochs, None);
}

/// `slots`: MemN2N's fixed memory size (unused slots in the softmax), `None` to mask them.
fn learns_with(kind: ModelKind, epochs: usize, slots: Option<usize>) {
    let device = test_device();
    // The readers see more stories than MemN2N: a statement encoder generalises over who went
    // where only after more combinations (with 400 stories, 2 of 64 seeded runs stopped at 99 %;
    // with 800, none of 128).
    let train = synthetic(if kind == ModelKind::Memn2n { 400 } else { 800 }, 1);
    let test = synthetic(100, 2);
    let vocab = Vocab::build(train.iter().chain(&test));
    let mut config = BabiTrainConfig::new(kind);
    config.epochs = epochs;
    if kind == ModelKind::Memn2n {
        config.linear_start = false;
        config.model.n_layers = 1;
        config.model.slots = slots;
        config.lr = 0.05;
    } else {
        // Small enough to train in seconds in a debug build; one hop for one supporting fact.
        config.model.d_model = 16;
        config.model.n_heads = 2;
        config.model.n_layers = 1;
        config.model.n_hops = 1;
        config.model.dropout = 0.0;
        config.lr = 1e-2;
        config.batch_size = 16;
        config.halve_every = 3;
    }
    let run = train_babi(&train, &test, &vocab, &config, &device, &mut |_| {});
    let (error, _) = evaluate(&run.model, &test, &vocab, 50, false, &device);
    assert_eq!(error, 0.0, "{kind:?} test error {error}; history {:?}", run.history);
}

#[test]
fn memn2n_learns_single_supporting_fact() {
    learns(ModelKind::Memn2n, 30);
}

#[test]
fn memn2n_with_unused_slots_in_the_softmax_learns_single_supporting_fact() {
    // Four statements per story, ten slots: six unused ones take their share of every hop.
    learns_with(ModelKind::Memn2n, 30, Some(10));
}

#[test]
fn transformer_reader_learns_single_supporting_fact() {
    learns(ModelKind::Transformer, 5);
}

#[test]
fn universal_transformer_reader_learns_single_supporting_fact() {
    learns(ModelKind::Universal, 5);
}

#[test]
fn lstm_reader_learns_single_supporting_fact() {
    learns(ModelKind::Lstm, 5);
}

#[test]
fn gru_reader_learns_single_supporting_fact() {
    learns(ModelKind::Gru, 5);
}

#[test]
fn saved_models_answer_the_same_and_show_attention() {
    let device = test_device();
    let train = synthetic(200, 3);
    let vocab = Vocab::build(&train);
    let mut config = BabiTrainConfig::new(ModelKind::Memn2n);
    config.epochs = 2;
    // As `engram train babi` sizes it: four slots, the two of the story below leave two unused.
    config.model = config.model.with_fixed_memory(&train);
    assert_eq!(config.model.slots, Some(4));
    let run = train_babi(&train, &[], &vocab, &config, &device, &mut |_| {});
    let trained = TrainedBabi { spec: config.model.clone(), vocab, model: run.model };
    let dir = std::env::temp_dir().join(format!("engram-babi-save-{}", std::process::id()));
    trained.save(&dir).unwrap();
    let loaded = TrainedBabi::load(&dir, &device).unwrap();
    let story = "1 Mary went to the kitchen.\n2 John went to the garden.\n";
    let (a, b) = (
        trained.ask(story, "Where is Mary?", &device),
        loaded.ask(story, "Where is Mary?", &device),
    );
    assert_eq!((&a.answer, &a.hops), (&b.answer, &b.hops));
    assert_eq!(a.hops.len(), 3);
    assert_eq!(a.statements, ["Mary went to the kitchen.", "John went to the garden."]);
    // The unused slots take a share, so a hop's attention over the statements sums under 1.
    for hop in &a.hops {
        let sum = hop.iter().sum::<f64>();
        assert!(sum > 0.0 && sum < 1.0 - 1e-3, "{hop:?}");
    }
    assert!(a.to_svg().starts_with("<svg") && a.to_text().contains("hop 3"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saved_readers_answer_the_same_with_one_attention_per_hop() {
    let device = test_device();
    let train = synthetic(50, 4);
    let vocab = Vocab::build(&train);
    let mut config = BabiTrainConfig::new(ModelKind::Gru);
    config.epochs = 1;
    config.model.d_model = 8;
    config.model.n_layers = 1;
    config.model.n_hops = 2;
    let run = train_babi(&train, &[], &vocab, &config, &device, &mut |_| {});
    let trained = TrainedBabi { spec: config.model.clone(), vocab, model: run.model };
    let dir = std::env::temp_dir().join(format!("engram-babi-reader-{}", std::process::id()));
    trained.save(&dir).unwrap();
    let loaded = TrainedBabi::load(&dir, &device).unwrap();
    let story = "1 Mary went to the kitchen.\n2 John went to the garden.\n";
    let (a, b) = (
        trained.ask(story, "Where is Mary?", &device),
        loaded.ask(story, "Where is Mary?", &device),
    );
    assert_eq!((&a.answer, a.hops.len()), (&b.answer, 2));
    for (x, y) in a.hops.iter().flatten().zip(b.hops.iter().flatten()) {
        assert!((x - y).abs() < 1e-5, "{:?} vs {:?}", a.hops, b.hops);
    }
    for hop in &a.hops {
        assert!((hop.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{hop:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
