//! `engram`: train, evaluate and inspect engram's memory mechanisms from the command line.
//!
//! This binary is glue: it parses arguments, picks the device through
//! [`engram_tensor::device`], and calls the library crates. Errors print their whole chain to
//! stderr; the exit code is 2 for usage and configuration errors and 1 for failures at run time.

mod babi;
mod classify;
mod dtw;
mod info;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Memory mechanisms of language models, on burn.
#[derive(Debug, Parser)]
#[command(name = "engram", version, about, propagate_version = true)]
struct Cli {
    /// Backend to run on, among those compiled in (flex, ndarray, wgpu); defaults to
    /// $ENGRAM_BACKEND, then the first compiled-in backend.
    #[arg(long, global = true, value_name = "NAME")]
    backend: Option<String>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the version, the compiled-in backends, the chosen device and the thread count.
    Info,
    /// Dynamic time warping: distances, paths, matrices, 1-NN classification, search.
    Dtw(dtw::DtwArgs),
    /// Train a model on a task.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Evaluate a trained classifier (accuracy, per-class precision, recall, F1 and the
    /// confusion matrix), or a bAbI model with `engram eval babi`.
    Eval(EvalCommand),
    /// Classify texts (one per line, from a file or stdin) with a trained classifier.
    Predict(classify::PredictArgs),
    /// Answer a question (stdin) about a story with a bAbI model and show where it looked.
    Ask(babi::AskArgs),
}

#[derive(Debug, Subcommand)]
enum TrainCommand {
    /// Text classification: embedding, a memory (transformer, LSTM, GRU, RNN), pooling, linear.
    Classify(Box<classify::TrainArgs>),
    /// bAbI question answering: MemN2N or a reader on any memory, per task or joint.
    Babi(Box<babi::TrainArgs>),
}

/// `engram eval --model DIR ...` (a classifier) or `engram eval babi ...`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct EvalCommand {
    #[command(subcommand)]
    task: Option<EvalTask>,
    #[command(flatten)]
    classify: classify::EvalArgs,
}

#[derive(Debug, Subcommand)]
enum EvalTask {
    /// bAbI: per-task test error of a model from `engram train babi`.
    Babi(babi::EvalArgs),
}

/// How a command failed, which decides the exit code.
#[derive(Debug)]
enum Failure {
    /// Bad arguments or configuration: exit 2.
    Usage(anyhow::Error),
    /// Something went wrong while running: exit 1.
    Runtime(anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info::run(cli.backend.as_deref(), cli.json),
        Command::Dtw(args) => dtw::run(args, cli.json),
        Command::Train(TrainCommand::Classify(args)) => {
            classify::train(*args, cli.backend.as_deref(), cli.json)
        }
        Command::Train(TrainCommand::Babi(args)) => {
            babi::train(*args, cli.backend.as_deref(), cli.json)
        }
        Command::Eval(EvalCommand { task: Some(EvalTask::Babi(args)), .. }) => {
            babi::eval(args, cli.backend.as_deref(), cli.json)
        }
        Command::Eval(EvalCommand { task: None, classify }) => {
            classify::eval(classify, cli.backend.as_deref(), cli.json)
        }
        Command::Ask(args) => babi::ask(args, cli.backend.as_deref(), cli.json),
        Command::Predict(args) => classify::predict(args, cli.backend.as_deref(), cli.json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(err)) => report(&err, 2),
        Err(Failure::Runtime(err)) => report(&err, 1),
    }
}

fn report(err: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
