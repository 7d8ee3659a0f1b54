//! `engram train babi`, `engram eval babi` and `engram ask`: bAbI question answering.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::Args;
use engram_tasks::babi::report::{TaskResult, markdown_table, summary};
use engram_tasks::babi::{
    BabiSet, BabiTrainConfig, LoadedTasks, ModelKind, QaExample, ReadOptions, TASK_NAMES,
    TrainedBabi, Vocab, load_tasks, train_babi,
};
use serde_json::json;

use crate::Failure;

fn usage(err: anyhow::Error) -> Failure {
    Failure::Usage(err)
}

fn runtime(err: impl Into<anyhow::Error>) -> Failure {
    Failure::Runtime(err.into())
}

/// Which data.
#[derive(Debug, Args)]
pub(crate) struct BabiDataArgs {
    /// Data folder (the one holding babi/); default $ENGRAM_DATA, then ../shared/data.
    #[arg(long, value_name = "DIR", env = "ENGRAM_DATA", default_value = "../shared/data")]
    data: PathBuf,
    /// Training-set size: 1k (babi/en) or 10k (babi/en-10k).
    #[arg(long, default_value = "1k")]
    set: BabiSet,
    /// Tasks, as a list and ranges: `1,2,5-7`; default all twenty.
    #[arg(long, value_name = "LIST", default_value = "1-20", value_parser = parse_tasks)]
    tasks: ::std::vec::Vec<usize>,
    /// Statements kept as memory (the last N before each question).
    #[arg(long, value_name = "N", default_value_t = 50)]
    memory: usize,
}

fn parse_tasks(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let number = |x: &str| {
            x.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .ok_or_else(|| format!("bAbI tasks are 1 to 20, got {x:?}"))
        };
        let (a, b) = (number(a)?, number(b)?);
        if a > b {
            return Err(format!("empty task range {part}"));
        }
        for t in a..=b {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// `engram train babi`.
#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    data: BabiDataArgs,
    /// Model: memn2n, transformer, universal (weights shared across depth), lstm, gru.
    #[arg(long, default_value = "memn2n")]
    model: ModelKind,
    /// Train one model on all the chosen tasks together (joint) instead of one per task.
    #[arg(long)]
    joint: bool,
    /// Where to write the models: DIR/task-N per task, or DIR itself with --joint.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Epochs (default: 100 for memn2n, after its 20 of linear start; 60 for the readers).
    #[arg(long)]
    epochs: Option<usize>,
    /// Independent runs per task; the one with the lowest training error is kept.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Seed of the first run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Embedding width (default: 20 for memn2n, 50 with --joint; 64 for the readers).
    #[arg(long)]
    d_model: Option<usize>,
    /// MemN2N hops, or the readers' layers (default 3 and 2).
    #[arg(long)]
    layers: Option<usize>,
    /// Learning rate (default 0.01 for memn2n's SGD, 1e-3 for the readers' AdamW).
    #[arg(long)]
    lr: Option<f64>,
    /// MemN2N: bag-of-words sentences instead of position encoding.
    #[arg(long)]
    bow: bool,
    /// MemN2N: no temporal encoding.
    #[arg(long)]
    no_temporal: bool,
    /// MemN2N: layer-wise (RNN-like) weight tying instead of adjacent.
    #[arg(long)]
    layer_wise: bool,
    /// MemN2N: a ReLU on the controller state after each hop (the paper's 10k "non-linearity").
    #[arg(long)]
    relu: bool,
    /// MemN2N: mask the unused memory slots out of the softmax instead of letting them take
    /// their share with score 0, as the authors' code does (a memory of as many slots as the
    /// longest training story, at most --memory).
    #[arg(long)]
    masked_memory: bool,
    /// MemN2N: no linear start.
    #[arg(long)]
    no_linear_start: bool,
    /// Fraction of empty memories added at training (default 0.1 for memn2n, 0 otherwise).
    #[arg(long)]
    noise: Option<f64>,
    /// Print each epoch to stderr.
    #[arg(long)]
    verbose: bool,
}

/// `engram eval babi`.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    data: BabiDataArgs,
    /// A model directory from `engram train babi`: one model (babi.json), or DIR/task-N per task.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
}

/// `engram ask`.
#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// A model directory written by `engram train babi` (one holding babi.json).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The story: one statement per line (bAbI's leading line ids are allowed).
    #[arg(long, value_name = "FILE")]
    story: PathBuf,
    /// The question; default: read from stdin.
    #[arg(long, value_name = "TEXT")]
    question: Option<String>,
    /// Also draw the attention of every hop over the statements as an SVG heatmap.
    #[arg(long, value_name = "FILE.svg")]
    heatmap: Option<PathBuf>,
}

fn device(backend: Option<&str>) -> Result<burn::tensor::Device, Failure> {
    engram_tensor::device(backend).map_err(|e| usage(e.into()))
}

fn load(data: &BabiDataArgs, seed: u64) -> Result<LoadedTasks, Failure> {
    let options = ReadOptions { memory_size: data.memory, ..Default::default() };
    let loaded = load_tasks(&data.data, data.set, &data.tasks, options, 0.1, seed)
        .with_context(|| format!("reading bAbI {} from {}", data.set.name(), data.data.display()))
        .map_err(runtime)?;
    for (task, err) in &loaded.missing {
        eprintln!("warning: task {task} skipped: {err}");
    }
    if loaded.tasks.is_empty() {
        return Err(runtime(anyhow!(
            "no bAbI task could be read from {} (set {})",
            data.data.join("babi").join(data.set.dir_name()).display(),
            data.set.name()
        )));
    }
    Ok(loaded)
}

fn config(args: &TrainArgs) -> Result<BabiTrainConfig, Failure> {
    let mut c = BabiTrainConfig::new(args.model);
    let memn2n = args.model == ModelKind::Memn2n;
    let memn2n_only = [
        ("--bow", args.bow),
        ("--no-temporal", args.no_temporal),
        ("--layer-wise", args.layer_wise),
        ("--relu", args.relu),
        ("--masked-memory", args.masked_memory),
        ("--no-linear-start", args.no_linear_start),
    ];
    if let Some((flag, _)) = memn2n_only.iter().find(|(_, set)| *set && !memn2n) {
        return Err(usage(anyhow!("{flag} is a MemN2N option; --model is {}", args.model.name())));
    }
    if let Some(e) = args.epochs {
        c.epochs = e;
    }
    c.runs = args.runs;
    c.seed = args.seed;
    c.model.memory_size = args.data.memory;
    if memn2n && args.joint {
        c.model.d_model = 50;
    }
    if let Some(d) = args.d_model {
        c.model.d_model = d;
    }
    if let Some(l) = args.layers {
        c.model.n_layers = l;
    }
    if let Some(lr) = args.lr {
        c.lr = lr;
    }
    if let Some(n) = args.noise {
        c.noise = n;
    }
    c.model.position_encoding = !args.bow;
    c.model.temporal = !args.no_temporal;
    c.model.layer_wise = args.layer_wise;
    c.model.relu = args.relu;
    c.linear_start = memn2n && !args.no_linear_start;
    c.validate().map_err(|m| usage(anyhow!("invalid training configuration: {m}")))?;
    Ok(c)
}

fn task_label(task: usize) -> String {
    format!("{task} {}", TASK_NAMES[task - 1])
}

pub(crate) fn train(args: TrainArgs, backend: Option<&str>, json: bool) -> Result<(), Failure> {
    let config = config(&args)?;
    let device = device(backend)?;
    let loaded = load(&args.data, args.seed)?;
    let started = Instant::now();
    let verbose = args.verbose;
    // Without --verbose, one line per finished run, so that long runs show progress.
    let last_epoch = config.linear_epochs() + config.epochs;
    let current = std::cell::Cell::new(0); // the task being trained, 0 when joint
    let mut on_epoch = |e: &engram_tasks::babi::BabiEpoch| {
        if !verbose && e.epoch == last_epoch {
            eprintln!(
                "{}: run {}/{} done, last epoch's valid acc {:.1} % ({:.0} s)",
                match current.get() {
                    0 => "joint".to_string(),
                    task => format!("task {task}"),
                },
                e.run + 1,
                config.runs,
                e.valid_accuracy * 100.0,
                e.seconds
            );
        }
        if verbose {
            eprintln!(
                "run {} epoch {:>3}: loss {:.4}, valid loss {:.4}, valid acc {:.3}, lr {:.4}{} ({:.1} s)",
                e.run,
                e.epoch,
                e.train_loss,
                e.valid_loss,
                e.valid_accuracy,
                e.lr,
                if e.linear { ", linear" } else { "" },
                e.seconds
            );
        }
    };
    let mut results = Vec::new();
    if args.joint {
        let all = |f: fn(&engram_tasks::babi::BabiTask) -> &Vec<QaExample>| -> Vec<QaExample> {
            loaded.tasks.iter().flat_map(|t| f(t).iter().cloned()).collect()
        };
        let (train, valid) = (all(|t| &t.train), all(|t| &t.valid));
        let vocab = Vocab::build(train.iter().chain(&valid));
        let config = sized(&config, &train, args.masked_memory);
        let run = train_babi(&train, &valid, &vocab, &config, &device, &mut on_epoch);
        let trained = TrainedBabi { spec: config.model.clone(), vocab, model: run.model };
        let seconds = started.elapsed().as_secs_f64() / loaded.tasks.len() as f64;
        for task in &loaded.tasks {
            let test_error = trained.error(&task.test, &device);
            let train_error = trained.error(&task.train, &device);
            let valid_error = trained.error(&task.valid, &device);
            let r = TaskResult {
                task: task.id,
                test_error,
                train_error,
                valid_error,
                run: run.run,
                seconds,
            };
            print_task(&r, json);
            results.push(r);
        }
        if let Some(out) = &args.out {
            trained.save(out).map_err(runtime)?;
        }
    } else {
        for task in &loaded.tasks {
            let t0 = Instant::now();
            current.set(task.id);
            let vocab = Vocab::build(task.train.iter().chain(&task.valid));
            let config = sized(&config, &task.train, args.masked_memory);
            let run = train_babi(&task.train, &task.valid, &vocab, &config, &device, &mut on_epoch);
            let trained = TrainedBabi { spec: config.model.clone(), vocab, model: run.model };
            let test_error = trained.error(&task.test, &device);
            let r = TaskResult {
                task: task.id,
                test_error,
                train_error: run.train_error,
                valid_error: run.valid_error,
                run: run.run,
                seconds: t0.elapsed().as_secs_f64(),
            };
            print_task(&r, json);
            results.push(r);
            if let Some(out) = &args.out {
                trained.save(&out.join(format!("task-{}", task.id))).map_err(runtime)?;
            }
        }
    }
    finish(&results, &loaded, args.data.set, args.model, started, json);
    Ok(())
}

/// `config` with MemN2N's memory sized for `train`, unless `masked`.
fn sized(config: &BabiTrainConfig, train: &[QaExample], masked: bool) -> BabiTrainConfig {
    let mut config = config.clone();
    if !masked {
        config.model = config.model.with_fixed_memory(train);
    }
    config
}

fn print_task(r: &TaskResult, json: bool) {
    if !json {
        println!(
            "task {}: test error {:.1} %, train {:.1} %, valid {:.1} % (run {}, {:.1} s)",
            task_label(r.task),
            r.test_error * 100.0,
            r.train_error * 100.0,
            r.valid_error * 100.0,
            r.run,
            r.seconds
        );
    }
}

fn finish(
    results: &[TaskResult],
    loaded: &LoadedTasks,
    set: BabiSet,
    model: ModelKind,
    started: Instant,
    json: bool,
) {
    let (mean, failed) = summary(results);
    let seconds = started.elapsed().as_secs_f64();
    let missing: Vec<usize> = loaded.missing.iter().map(|(t, _)| *t).collect();
    if json {
        let report = json!({
            "set": set.name(),
            "model": model.name(),
            "tasks": results,
            "missing": missing,
            "missing_text": missing_text(loaded),
            "table": markdown_table(results, set == BabiSet::En10k),
            "mean_error": mean,
            "failed": failed,
            "seconds": seconds,
        });
        println!("{report}");
    } else {
        println!(
            "mean test error {mean:.1} % over {} tasks, {failed} failed (> 5 %), {seconds:.1} s",
            results.len()
        );
        if !missing.is_empty() {
            println!("missing (not counted): {}", missing_text(loaded));
        }
        print!("{}", markdown_table(results, set == BabiSet::En10k));
    }
}

/// `3 (no file ...qa3_three-supporting-facts_train.txt)` for each task that could not be read.
fn missing_text(loaded: &LoadedTasks) -> String {
    let one = |(task, err): &(usize, engram_tasks::data::DataError)| match err {
        engram_tasks::data::DataError::MissingFile { path, .. } => format!(
            "task {task} (no {})",
            path.file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
        ),
        other => format!("task {task} ({other})"),
    };
    loaded.missing.iter().map(one).collect::<Vec<_>>().join(", ")
}

pub(crate) fn eval(args: EvalArgs, backend: Option<&str>, json: bool) -> Result<(), Failure> {
    let device = device(backend)?;
    let started = Instant::now();
    let loaded = load(&args.data, 1)?;
    let single = args.model.join("babi.json").exists();
    let mut results = Vec::new();
    let mut kind = ModelKind::Memn2n;
    let shared = if single { Some(load_model(&args.model, &device)?) } else { None };
    for task in &loaded.tasks {
        let t0 = Instant::now();
        let own;
        let model = match &shared {
            Some(m) => m,
            None => {
                own = load_model(&args.model.join(format!("task-{}", task.id)), &device)?;
                &own
            }
        };
        kind = model.spec.kind;
        let r = TaskResult {
            task: task.id,
            test_error: model.error(&task.test, &device),
            train_error: model.error(&task.train, &device),
            valid_error: model.error(&task.valid, &device),
            run: 0,
            seconds: t0.elapsed().as_secs_f64(),
        };
        print_task(&r, json);
        results.push(r);
    }
    finish(&results, &loaded, args.data.set, kind, started, json);
    Ok(())
}

fn load_model(dir: &Path, device: &burn::tensor::Device) -> Result<TrainedBabi, Failure> {
    TrainedBabi::load(dir, device)
        .with_context(|| format!("cannot load the bAbI model in {}", dir.display()))
        .map_err(runtime)
}

pub(crate) fn ask(args: AskArgs, backend: Option<&str>, json: bool) -> Result<(), Failure> {
    if let Some(path) = &args.heatmap
        && path.extension().and_then(|e| e.to_str()) != Some("svg")
    {
        return Err(usage(anyhow!("--heatmap {} must end in .svg", path.display())));
    }
    let device = device(backend)?;
    let model = load_model(&args.model, &device)?;
    let story = std::fs::read_to_string(&args.story)
        .with_context(|| format!("cannot read the story {}", args.story.display()))
        .map_err(runtime)?;
    let question = match args.question {
        Some(q) => q,
        None => {
            let mut text = String::new();
            if std::io::stdin().is_terminal() {
                eprintln!("question:");
            }
            std::io::stdin().read_to_string(&mut text).context("reading stdin").map_err(runtime)?;
            text
        }
    };
    let question = question.trim();
    if question.is_empty() {
        return Err(usage(anyhow!("no question: give --question or write it on stdin")));
    }
    if story.trim().is_empty() {
        return Err(usage(anyhow!("the story {} holds no statement", args.story.display())));
    }
    let asked = model.ask(&story, question, &device);
    if let Some(path) = &args.heatmap {
        engram_tasks::train::write_atomically(path, asked.to_svg().as_bytes()).map_err(runtime)?;
    }
    if json {
        println!("{}", serde_json::to_string(&asked).expect("answers serialise"));
    } else {
        print!("{}", asked.to_text());
    }
    Ok(())
}
