//! `cargo xtask gpu <out-dir>`: everything to run on a machine with a GPU, in one go, with the
//! logs and bench tables written to `<out-dir>` for whoever reads them afterwards.
//!
//! Unlike `ci`, a failed step does not stop the run: GPU time is scarce, and a failed test step
//! should not cost the benchmark numbers.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::backend::{Backend, vulkan_env};
use crate::bench;
use crate::ci::{TestArgs, test_command};
use crate::run::{self, cargo};

pub fn gpu(out_dir: &Path) -> Result<()> {
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut outcomes: Vec<(&str, Result<()>)> = Vec::new();

    // Without a driver the later steps fail too, but they still run: their logs show how.
    let env = vulkan_env();
    let env_vars = env.as_ref().map(Vec::clone).unwrap_or_default();
    outcomes.push(("vulkan", env.map(drop)));

    let mut build = cargo(["build", "--workspace", "--release"]);
    build.args(Backend::Wgpu.cargo_flags()).envs(env_vars.iter().map(|(k, v)| (k, v)));
    outcomes.push(("build", run::run_logged(&mut build, &out_dir.join("build.log"))));

    let args = TestArgs { backend: Backend::Wgpu, cargo_args: Vec::new() };
    let mut test = test_command(&args, &env_vars);
    outcomes.push(("test", run::run_logged(&mut test, &out_dir.join("test.log"))));

    outcomes.push(("bench", benches(out_dir, &env_vars)));

    let mut summary = String::new();
    for (step, outcome) in &outcomes {
        match outcome {
            Ok(()) => writeln!(summary, "ok      {step}")?,
            Err(err) => writeln!(summary, "FAILED  {step}: {err:#}")?,
        }
    }
    eprint!("{summary}");
    let path = out_dir.join("summary.txt");
    fs::write(&path, &summary).with_context(|| format!("writing {}", path.display()))?;
    let failed: Vec<&str> =
        outcomes.iter().filter(|(_, outcome)| outcome.is_err()).map(|(step, _)| *step).collect();
    if !failed.is_empty() {
        bail!("gpu: failed steps: {} (see {})", failed.join(", "), path.display());
    }
    Ok(())
}

/// Runs the wgpu benches and keeps their table beside the log.
fn benches(out_dir: &Path, env: &[(String, String)]) -> Result<()> {
    let log = out_dir.join("bench.log");
    let table = bench::run_backend(Backend::Wgpu, &[], env, Some(&log))?;
    println!("{table}");
    let path = out_dir.join("bench-wgpu.txt");
    fs::write(&path, table).with_context(|| format!("writing {}", path.display()))
}
