//! `cargo xtask bench`: runs the criterion binary once per backend and prints a table of the
//! results that this run produced.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use crate::UsageError;
use crate::backend::{Backend, vulkan_env};
use crate::criterion::{collect, table};
use crate::run::{self, workspace_root};

/// The package and bench target that hold every benchmark.
const PACKAGE: &str = "engram-benches";
const BENCH: &str = "engram";

/// `bench [--backend B]... [criterion args: filter, flags...]`.
#[derive(Debug, PartialEq)]
pub struct BenchArgs {
    pub backends: Vec<Backend>,
    pub criterion_args: Vec<String>,
}

impl BenchArgs {
    pub fn parse(args: &[String]) -> Result<BenchArgs> {
        let mut backends = Vec::new();
        let mut rest = args;
        loop {
            match rest {
                [flag, value, tail @ ..] if flag == "--backend" => {
                    backends.push(Backend::parse(value)?);
                    rest = tail;
                }
                [flag, tail @ ..] if flag.starts_with("--backend=") => {
                    backends.push(Backend::parse(&flag["--backend=".len()..])?);
                    rest = tail;
                }
                [flag] if flag == "--backend" => Err(UsageError("--backend needs a value".into()))?,
                _ => break,
            }
        }
        if backends.is_empty() {
            backends.push(Backend::Flex);
        }
        // A leading `--` is how a filter that starts with a dash gets through.
        let rest = rest.strip_prefix(&["--".to_owned()]).unwrap_or(rest);
        Ok(BenchArgs { backends, criterion_args: rest.to_vec() })
    }
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    let mut tables = Vec::new();
    for &backend in &args.backends {
        let env = if backend == Backend::Wgpu { vulkan_env()? } else { Vec::new() };
        let table = run_backend(backend, &args.criterion_args, &env, None)?;
        // Print each table as soon as it exists, and all of them again at the end, where they
        // are not buried under criterion's output.
        println!("{table}");
        tables.push(table);
    }
    if tables.len() > 1 {
        println!("{}", tables.join("\n"));
    }
    Ok(())
}

/// Runs the benches for `backend` with `env` set, optionally logging the output to `log`, and
/// returns the table of the results written by this run.
pub fn run_backend(
    backend: Backend,
    criterion_args: &[String],
    env: &[(String, String)],
    log: Option<&Path>,
) -> Result<String> {
    let root = workspace_root();
    let results = criterion_dir(&root);
    let mut cmd = run::cargo(["bench", "--package", PACKAGE, "--bench", BENCH]);
    cmd.args(backend.cargo_flags())
        .arg("--")
        .args(criterion_args)
        .env("ENGRAM_BACKEND", backend.name())
        // Pinned so that the results are read from where criterion wrote them.
        .env("CRITERION_HOME", &results)
        .envs(env.iter().map(|(k, v)| (k, v)));
    // Criterion rewrites every result it produces, so files older than this are other runs'.
    let start = SystemTime::now();
    match log {
        Some(log) => run::run_logged(&mut cmd, log)?,
        None => run::run(&mut cmd)?,
    }
    let results = collect(&results, start)?;
    Ok(table(backend, &results))
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else `<target dir>/criterion`.
fn criterion_dir(root: &Path) -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    root.join(target).join("criterion")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn backends_repeat_and_the_rest_goes_to_criterion() {
        let parsed = BenchArgs::parse(&args(&["--backend", "wgpu", "--backend=flex", "softmax"]));
        assert_eq!(
            parsed.unwrap(),
            BenchArgs {
                backends: vec![Backend::Wgpu, Backend::Flex],
                criterion_args: args(&["softmax"])
            }
        );
        let parsed = BenchArgs::parse(&args(&["--", "--list"])).unwrap();
        assert_eq!(parsed.backends, [Backend::Flex]);
        assert_eq!(parsed.criterion_args, ["--list"]);
    }

    #[test]
    fn bad_backend_flags_are_usage_errors() {
        for bad in [&["--backend"][..], &["--backend", "tpu"]] {
            assert!(BenchArgs::parse(&args(bad)).unwrap_err().is::<UsageError>(), "{bad:?}");
        }
    }
}
