//! The bAbI reader on fixtures: story boundaries, list answers, supporting facts, memory size,
//! malformed lines with file:line, missing files, seeded validation splits.

use std::path::{Path, PathBuf};

use engram_tasks::babi::{
    BabiSet, BabiTask, HostBatch, ReadOptions, Vocab, load_tasks, parse_babi, read_babi, task_path,
};
use engram_tasks::data::{DataError, OnMalformed};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn qa1() -> PathBuf {
    task_path(&fixtures(), BabiSet::En1k, 1, "train")
}

#[test]
fn stories_restart_at_id_one_and_memory_holds_only_earlier_statements() {
    let (qa, report) = read_babi(&qa1(), ReadOptions::default()).unwrap();
    assert_eq!((report.stories, report.questions, qa.len()), (2, 3, 3));
    let ids = |i: usize| qa[i].story.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(0), [1, 2]);
    assert_eq!(ids(1), [1, 2, 4], "question lines are not memories");
    assert_eq!(ids(2), [1], "the second story starts empty");
    assert_eq!(qa[2].story[0].words, ["sandra", "journeyed", "to", "the", "garden"]);
    assert_eq!(qa[1].question, ["where", "is", "daniel"]);
    assert_eq!((qa[1].answer.clone(), qa[1].supporting.clone()), (vec!["hallway".into()], vec![4]));
    assert_eq!(qa[1].line, 5);
}

#[test]
fn list_answers_and_several_supporting_facts() {
    let path = task_path(&fixtures(), BabiSet::En1k, 8, "train");
    let (qa, _) = read_babi(&path, ReadOptions::default()).unwrap();
    assert_eq!(qa[0].answer, ["milk", "apple"]);
    assert_eq!(qa[0].answer_label(), "milk,apple");
    assert_eq!(qa[0].supporting, [1, 2]);
    assert_eq!(qa[1].answer, ["s", "e"]);
    let vocab = Vocab::build(&qa);
    assert_ne!(vocab.id("milk,apple"), 0, "a list answer is one class of the vocabulary");
    assert_ne!(vocab.id("s,e"), 0);
}

#[test]
fn memory_keeps_the_last_statements() {
    let text = (1..=6).map(|i| format!("{i} s{i} went home.\n")).collect::<String>()
        + "7 Where is s6?\thome\t6\n";
    let options = ReadOptions { memory_size: 2, ..Default::default() };
    let (qa, _) = parse_babi(&text, Path::new("m.txt"), options).unwrap();
    assert_eq!(qa[0].story.iter().map(|s| s.id).collect::<Vec<_>>(), [5, 6]);
}

fn malformed(name: &str) -> String {
    let path = fixtures().join("babi").join(name);
    match read_babi(&path, ReadOptions::default()) {
        Err(err @ DataError::Malformed(_)) => err.to_string(),
        other => panic!("{name}: expected a malformed-line error, got {other:?}"),
    }
}

#[test]
fn malformed_lines_name_file_and_line() {
    let e = malformed("bad-no-answer.txt");
    assert!(e.contains("bad-no-answer.txt:2:") && e.contains("empty answer"), "{e}");
    let e = malformed("bad-id.txt");
    assert!(e.contains("bad-id.txt:2:") && e.contains("does not follow 1"), "{e}");
    let e = malformed("bad-support.txt");
    assert!(e.contains("bad-support.txt:2:") && e.contains("\"7\""), "{e}");
    let e = malformed("bad-no-id.txt");
    assert!(e.contains("bad-no-id.txt:2:") && e.contains("not a positive integer"), "{e}");
}

#[test]
fn skipping_malformed_lines_reports_them() {
    let path = fixtures().join("babi/bad-support.txt");
    let options = ReadOptions { on_malformed: OnMalformed::Skip, ..Default::default() };
    let (qa, report) =
        parse_babi(&std::fs::read_to_string(&path).unwrap(), &path, options).unwrap();
    assert!(qa.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].line, 2);
}

#[test]
fn missing_files_are_reported_not_fatal() {
    // en-10k holds only task 1's test file; en holds task 1's both and task 8's train.
    let loaded =
        load_tasks(&fixtures(), BabiSet::En10k, &[1, 3], ReadOptions::default(), 0.1, 7).unwrap();
    assert!(loaded.tasks.is_empty());
    assert_eq!(loaded.missing.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [1, 3]);
    let message = loaded.missing[1].1.to_string();
    assert!(message.contains("qa3_three-supporting-facts_train.txt"), "{message}");
    let loaded =
        load_tasks(&fixtures(), BabiSet::En1k, &[1, 8], ReadOptions::default(), 0.0, 7).unwrap();
    assert_eq!(loaded.tasks.len(), 1);
    assert_eq!(loaded.tasks[0].test.len(), 3);
}

#[test]
fn validation_split_is_seeded_and_a_tenth() {
    let make = |seed| {
        let mut task =
            BabiTask::load(&fixtures(), BabiSet::En1k, 1, ReadOptions::default()).unwrap();
        let mut many = Vec::new();
        for _ in 0..10 {
            many.extend(task.train.iter().cloned());
        }
        task.train = many;
        task.split_valid(0.1, seed);
        task
    };
    let (a, b) = (make(3), make(3));
    assert_eq!(a.valid.len(), 3);
    assert_eq!(a.train.len(), 27);
    assert_eq!(a.valid, b.valid);
}

#[test]
fn batches_put_the_most_recent_statement_first_and_pad() {
    let (qa, _) = read_babi(&qa1(), ReadOptions::default()).unwrap();
    let vocab = Vocab::build(&qa);
    let mut rng = StdRng::seed_from_u64(0);
    let refs: Vec<_> = qa.iter().collect();
    let batch = HostBatch::new(&refs, &vocab, 0.0, 50, &mut rng);
    assert_eq!((batch.batch, batch.memory, batch.words), (3, 3, 6));
    // Row 1 (which starts 3 slots of 6 words in): statements 1, 2, 4; slot 0 is statement 4
    // ("daniel went back to the hallway").
    assert_eq!(batch.story[3 * 6], vocab.id("daniel") as i64);
    assert_eq!(batch.slots[1], [Some(2), Some(1), Some(0)]);
    assert_eq!(batch.n_memories, [2, 3, 1]);
    assert_eq!(batch.answer[2], vocab.id("garden") as i64);
    // Noise adds empty memories without losing statements.
    let noisy = HostBatch::new(&refs, &vocab, 0.5, 50, &mut rng);
    for (row, ex) in noisy.slots.iter().zip(&qa) {
        assert_eq!(row.iter().flatten().count(), ex.story.len());
        assert!(row.len() >= ex.story.len());
    }
}
