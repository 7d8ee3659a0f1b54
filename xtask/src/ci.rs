//! `cargo xtask ci` (every check CI runs, in order, stopping at the first failure) and
//! `cargo xtask test` (the workspace's tests on one backend).

use std::process::Command;

use anyhow::{Context, Result};

use crate::UsageError;
use crate::backend::{Backend, vulkan_env};
use crate::run::{self, cargo};
use crate::tidy;

pub fn ci() -> Result<()> {
    let mut doc = cargo(["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", rustdoc_flags());
    // The GPU build is only compiled: CI has no GPU, but a wgpu-only compile error should still
    // fail here rather than on the first machine that has one. Defaults stay on, as a user who
    // adds `--features wgpu` gets flex and wgpu together.
    let wgpu = cargo(["check", "--workspace", "--all-targets", "--features", "wgpu"]);
    let mut ndarray = cargo(["check", "--workspace", "--all-targets"]);
    ndarray.args(Backend::Ndarray.cargo_flags());
    let steps = [
        ("fmt", cargo(["fmt", "--all", "--", "--check"])),
        ("clippy", cargo(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
        ("test", cargo(["test", "--workspace"])),
        ("doc", doc),
        ("check wgpu", wgpu),
        ("check ndarray", ndarray),
    ];
    for (name, mut cmd) in steps {
        eprintln!("ci: {name}");
        run::run(&mut cmd).with_context(|| format!("ci: step `{name}` failed"))?;
    }
    eprintln!("ci: tidy");
    tidy::tidy().context("ci: step `tidy` failed")?;
    eprintln!("ci: all steps passed");
    Ok(())
}

/// `-D warnings` added to whatever RUSTDOCFLAGS the caller already set.
fn rustdoc_flags() -> String {
    let existing = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    format!("{existing} -D warnings").trim().to_owned()
}

/// `test [--backend B] [cargo test args...]`.
#[derive(Debug, PartialEq)]
pub struct TestArgs {
    pub backend: Backend,
    pub cargo_args: Vec<String>,
}

impl TestArgs {
    pub fn parse(args: &[String]) -> Result<TestArgs> {
        match args {
            [flag, value, rest @ ..] if flag == "--backend" => {
                Ok(TestArgs { backend: Backend::parse(value)?, cargo_args: rest.to_vec() })
            }
            [flag, rest @ ..] if flag.starts_with("--backend=") => Ok(TestArgs {
                backend: Backend::parse(&flag["--backend=".len()..])?,
                cargo_args: rest.to_vec(),
            }),
            [flag] if flag == "--backend" => Err(UsageError("--backend needs a value".into()))?,
            rest => Ok(TestArgs { backend: Backend::Flex, cargo_args: rest.to_vec() }),
        }
    }
}

/// Runs the workspace's tests with only `backend` compiled in and selected at run time.
pub fn test(args: &TestArgs) -> Result<()> {
    let env = if args.backend == Backend::Wgpu { vulkan_env()? } else { Vec::new() };
    run::run(&mut test_command(args, &env))
}

/// The `cargo test` command for [`test()`], also used by `xtask gpu`.
pub fn test_command(args: &TestArgs, env: &[(String, String)]) -> Command {
    let mut cmd = cargo(["test", "--workspace"]);
    cmd.args(args.backend.cargo_flags())
        .args(&args.cargo_args)
        .env("ENGRAM_BACKEND", args.backend.name())
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn test_args_default_to_flex_and_pass_the_rest_to_cargo() {
        let parsed = TestArgs::parse(&args(&["softmax", "--", "--nocapture"])).unwrap();
        assert_eq!(parsed.backend, Backend::Flex);
        assert_eq!(parsed.cargo_args, ["softmax", "--", "--nocapture"]);
        let parsed = TestArgs::parse(&args(&["--backend=ndarray", "--release"])).unwrap();
        assert_eq!(parsed.backend, Backend::Ndarray);
        assert_eq!(parsed.cargo_args, ["--release"]);
        assert!(TestArgs::parse(&args(&["--backend"])).unwrap_err().is::<UsageError>());
    }

    #[test]
    fn test_command_selects_the_backend_at_build_and_run_time() {
        let parsed = TestArgs::parse(&args(&["--backend", "ndarray"])).unwrap();
        let line = run::display(&test_command(&parsed, &[]));
        assert_eq!(
            line,
            "ENGRAM_BACKEND=ndarray cargo test --workspace --no-default-features --features ndarray"
        );
    }
}
