//! `cargo xtask`: engram's repository chores (the CI checks, tests and benchmarks per backend,
//! the GPU run, repository rules) written in Rust, so they run the same on every machine with
//! nothing but cargo. Arguments are parsed by hand to keep xtask's only dependency anyhow, so it
//! builds in seconds.

mod backend;
mod bench;
mod ci;
mod criterion;
mod eval;
mod eval_babi;
mod eval_classify;
mod gpu;
mod json;
mod manifest;
mod run;
mod tidy;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  ci                          every check CI runs: fmt, clippy, test, doc, the wgpu and
                              ndarray builds, tidy; stops at the first failure
  test [--backend B] [ARGS]   cargo test --workspace with only backend B compiled in and
                              ENGRAM_BACKEND=B; ARGS go to cargo test (e.g. a test name, or
                              `-- --nocapture`)
  bench [--backend B]... [FILTER] [CRITERION ARGS]
                              the criterion benches once per backend (default flex), then a
                              table of this run's results; ENGRAM_BENCH_FULL=1 for the full
                              criterion profile
  eval ucr [--data DIR]       1-NN error rates (Euclidean, learned-window DTW, full DTW) on
                              the UCR datasets in DIR/ucr (default $ENGRAM_DATA, then
                              ../shared/data) next to the archive's DataSummary.csv
  eval classify [--data DIR] [--datasets trec,sst2,sst2-phrases,mr]
                [--models transformer,bilstm] [--folds N]
                              trains the recipes in recipes/classify/ (MR by N-fold
                              cross-validation, default 10) and writes the test
                              accuracies into docs/results.md
  eval babi [--set 1k|10k] [--model memn2n|transformer|universal|lstm|gru] [--runs N]
            [--tasks LIST] [--tying adjacent|layer-wise] [--relu] [--lr RATE]
            [--masked-memory] [--data DIR]
                              one model per bAbI task; per-task test errors next to the
                              published MemN2N and LSTM tables into docs/results.md
                              (every eval builds the release engram first, or runs
                              $ENGRAM_BIN, a binary kept aside, if set)
  gpu OUT_DIR                 on a GPU machine: build, test and bench with wgpu, writing logs,
                              tables and summary.txt to OUT_DIR; goes on past failed steps
  tidy                        repository rules: `//!` first lines, files under 600 lines,
                              no clap/anyhow/criterion in library crates
  help                        this text

backends (B): flex (default), ndarray, wgpu";

/// A mistake on the command line: reported with the usage text and exit code 2, where a failure
/// of the work itself exits with 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<UsageError>() => {
            eprintln!("error: {err}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(err) => {
            // `{:?}` prints the whole chain of contexts, one cause per line.
            eprintln!("error: {err:?}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        return Err(UsageError("no command given".into()).into());
    };
    match command.as_str() {
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        "ci" => {
            no_arguments(command, rest)?;
            ci::ci()
        }
        "test" => ci::test(&ci::TestArgs::parse(rest)?),
        "bench" => bench::bench(&bench::BenchArgs::parse(rest)?),
        "eval" => eval::eval(rest),
        "gpu" => match rest {
            [out_dir] => gpu::gpu(Path::new(out_dir)),
            _ => Err(UsageError("gpu takes one argument: the output folder".into()).into()),
        },
        "tidy" => {
            no_arguments(command, rest)?;
            tidy::tidy()
        }
        other => Err(UsageError(format!("unknown command `{other}`")).into()),
    }
}

fn no_arguments(command: &str, rest: &[String]) -> Result<()> {
    if let Some(extra) = rest.first() {
        return Err(UsageError(format!("`{command}` takes no arguments, got `{extra}`")).into());
    }
    Ok(())
}
