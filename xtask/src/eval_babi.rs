//! `cargo xtask eval babi [--set 1k|10k] [--model memn2n|transformer|lstm] [--runs N]
//! [--tasks LIST] [--tying adjacent|layer-wise] [--relu] [--lr RATE] [--masked-memory]
//! [--data DIR]`: trains one model per task with the release `engram train babi` and writes the per-task error table, next
//! to the published MemN2N and LSTM numbers, with the time taken, into the bAbI section of
//! `docs/results.md` (one block per set, model and, for MemN2N, weight tying and
//! non-linearity).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::UsageError;
use crate::json::Json;
use crate::run::{self, workspace_root};

struct Options {
    set: String,
    model: String,
    runs: String,
    tasks: String,
    /// MemN2N with layer-wise (RNN-like) weight tying instead of adjacent.
    layer_wise: bool,
    /// MemN2N with a ReLU on the controller state after each hop.
    relu: bool,
    /// Learning rate, when not the CLI's default.
    lr: Option<String>,
    /// MemN2N with unused memory slots masked out of the softmax (the behaviour before 5f04cc4).
    masked_memory: bool,
    data: PathBuf,
}

impl Options {
    /// The model as the results name it: `memn2n-lw` for layer-wise tying, `-relu` added for
    /// the non-linearity.
    fn variant(&self) -> String {
        let lw = if self.layer_wise { "-lw" } else { "" };
        let relu = if self.relu { "-relu" } else { "" };
        format!("{}{lw}{relu}", self.model)
    }
}

fn parse(args: &[String], data: PathBuf) -> Result<Options> {
    let mut options = Options {
        set: "1k".into(),
        model: "memn2n".into(),
        runs: "1".into(),
        tasks: "1-20".into(),
        layer_wise: false,
        relu: false,
        lr: None,
        masked_memory: false,
        data,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--relu" {
            options.relu = true;
            continue;
        }
        if flag == "--masked-memory" {
            options.masked_memory = true;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| UsageError(format!("eval babi: {flag} needs a value")))?
            .clone();
        match flag.as_str() {
            "--set" if value == "1k" || value == "10k" => options.set = value,
            "--model"
                if ["memn2n", "transformer", "universal", "lstm", "gru"]
                    .contains(&value.as_str()) =>
            {
                options.model = value
            }
            "--runs" => options.runs = value,
            "--tasks" => options.tasks = value,
            "--tying" if value == "adjacent" || value == "layer-wise" => {
                options.layer_wise = value == "layer-wise"
            }
            "--lr" if value.parse::<f64>().is_ok_and(|lr| lr > 0.0) => options.lr = Some(value),
            "--data" => options.data = PathBuf::from(value),
            _ => {
                return Err(UsageError(format!(
                    "eval babi: unknown flag or value `{flag} {value}` (flags: --set 1k|10k, \
                     --model memn2n|transformer|universal|lstm|gru, --runs N, --tasks LIST, \
                     --tying adjacent|layer-wise, --relu, --lr RATE, --masked-memory, --data DIR)"
                ))
                .into());
            }
        }
    }
    Ok(options)
}

pub fn babi(args: &[String], data: PathBuf) -> Result<()> {
    let options = parse(args, data)?;
    if (options.layer_wise || options.relu || options.masked_memory) && options.model != "memn2n" {
        return Err(UsageError(
            "eval babi: --tying, --relu and --masked-memory are MemN2N options".into(),
        )
        .into());
    }
    let variant = options.variant();
    let engram = crate::eval::engram_binary()?;
    let out = crate::eval::target_dir().join(format!("eval/babi/{}-{variant}", options.set));
    let started = Instant::now();
    let mut cmd = Command::new(&engram);
    cmd.args(["--json", "train", "babi", "--set", &options.set, "--model", &options.model])
        .args(["--runs", &options.runs, "--tasks", &options.tasks, "--data"])
        .arg(&options.data)
        .arg("--out")
        .arg(&out);
    if options.layer_wise {
        cmd.arg("--layer-wise");
    }
    if options.relu {
        cmd.arg("--relu");
    }
    if let Some(lr) = &options.lr {
        cmd.args(["--lr", lr]);
    }
    if options.masked_memory {
        cmd.arg("--masked-memory");
    }
    let line = run::display(&cmd);
    eprintln!("$ {line}");
    let output = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed with {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    let report =
        Json::parse(summary).with_context(|| format!("`{line}` printed no JSON summary"))?;
    let number = |key: &str| {
        report.get(key).and_then(Json::as_f64).with_context(|| format!("no {key} in the summary"))
    };
    let (mean, failed) = (number("mean_error")?, number("failed")?);
    let table = report.get("table").and_then(Json::as_str).context("no table in the summary")?;
    let missing = report.get("missing_text").and_then(Json::as_str).unwrap_or("");
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let mut flags = String::new();
    if options.layer_wise {
        flags += " --tying layer-wise";
    }
    if options.relu {
        flags += " --relu";
    }
    if let Some(lr) = &options.lr {
        flags += &format!(" --lr {lr}");
    }
    if options.masked_memory {
        flags += " --masked-memory";
    }
    let block = format!(
        "### {} {variant}, runs per task: {}\n\n`cargo xtask eval babi --set {} --model {} --runs \
         {}{flags}`: mean test error {mean:.1} %, {failed} failed tasks (> 5 %), {minutes:.1} min \
         in all (training, testing and the release build).{}\n\n{table}\n",
        options.set,
        options.runs,
        options.set,
        options.model,
        options.runs,
        if missing.is_empty() { String::new() } else { format!(" Tasks missing: {missing}.") }
    );
    println!("{block}");
    write_results(&options.set, &variant, &block)
}

/// Replaces this set and model's block in the bAbI section of docs/results.md, adding the
/// block at the end of the section, or the section at the end of the file, if absent.
fn write_results(set: &str, model: &str, block: &str) -> Result<()> {
    let path = workspace_root().join("docs/results.md");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    fs::write(&path, updated(&text, set, model, block))
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("updated {}", path.display());
    Ok(())
}

fn updated(text: &str, set: &str, model: &str, block: &str) -> String {
    let start = format!("<!-- eval babi {set} {model}: start -->");
    let end = format!("<!-- eval babi {set} {model}: end -->");
    let wrapped = format!("{start}\n{block}{end}\n");
    if let (Some(s), Some(e)) = (text.find(&start), text.find(&end))
        && s < e
    {
        let rest = text[e + end.len()..].trim_start_matches('\n');
        let gap = if rest.is_empty() { "" } else { "\n" };
        return format!("{}{wrapped}{gap}{rest}", &text[..s]);
    }
    match text.find("\n## bAbI") {
        Some(at) => {
            let body = at + "\n## bAbI".len();
            let next = text[body..].find("\n## ").map_or(text.len(), |i| body + i + 1);
            let (head, tail) = text.split_at(next);
            format!(
                "{}\n\n{wrapped}{}{tail}",
                head.trim_end(),
                if tail.is_empty() { "" } else { "\n" }
            )
        }
        None => format!("{}\n\n## bAbI (engram-tasks)\n\n{wrapped}", text.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_added_then_replaced_in_the_babi_section() {
        let doc = "# Results\n\n## UCR\n\nx\n";
        let once = updated(doc, "1k", "memn2n", "A\n");
        assert!(once.ends_with("## bAbI (engram-tasks)\n\n<!-- eval babi 1k memn2n: start -->\nA\n<!-- eval babi 1k memn2n: end -->\n"), "{once}");
        let twice = updated(&(once.clone() + "\n## Later\n\ny\n"), "1k", "memn2n", "B\n");
        assert!(twice.contains("start -->\nB\n<!--") && !twice.contains("\nA\n"), "{twice}");
        assert!(twice.contains("end -->\n\n## Later\n\ny\n"), "{twice}");
        let other = updated(&twice, "1k", "lstm", "C\n");
        let (c, later) = (other.find("\nC\n").unwrap(), other.find("## Later").unwrap());
        assert!(c < later && other.contains("\nB\n"), "{other}");
    }

    #[test]
    fn flags_are_checked() {
        assert!(parse(&["--set".into(), "5k".into()], PathBuf::new()).is_err());
        assert!(parse(&["--model".into()], PathBuf::new()).is_err());
        let o = parse(&["--model".into(), "lstm".into()], PathBuf::new()).unwrap();
        assert_eq!((o.set.as_str(), o.model.as_str()), ("1k", "lstm"));
        assert!(parse(&["--tying".into(), "rnn".into()], PathBuf::new()).is_err());
        let o = parse(&["--tying".into(), "layer-wise".into()], PathBuf::new()).unwrap();
        assert_eq!(o.variant(), "memn2n-lw");
        let args = ["--relu", "--tying", "layer-wise", "--lr", "0.005"].map(String::from);
        let o = parse(&args, PathBuf::new()).unwrap();
        assert_eq!((o.variant().as_str(), o.lr.as_deref()), ("memn2n-lw-relu", Some("0.005")));
        assert!(parse(&["--lr".into(), "-1".into()], PathBuf::new()).is_err());
        let o = parse(&["--masked-memory".into(), "--runs".into(), "5".into()], PathBuf::new());
        let o = o.unwrap();
        assert!(o.masked_memory && o.runs == "5" && o.variant() == "memn2n");
    }
}
