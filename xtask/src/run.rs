//! Running commands: each one is printed before it runs, and a failure names the command.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result, bail};

/// The workspace root: xtask lives one level below it, wherever the checkout is.
pub fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// A `cargo` command in the workspace root. Uses the cargo that runs xtask (`$CARGO`), so a
/// toolchain picked with rustup's `+toolchain` carries over to every step.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace_root()).args(args);
    cmd
}

/// The command as a shell line, with the environment it sets: what a person would type to
/// repeat the step by hand.
pub fn display(cmd: &Command) -> String {
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.to_string_lossy(), value?.display())))
        .map(|word| quote(&word))
        .collect();
    let program = Path::new(cmd.get_program());
    // `$CARGO` is an absolute path into the toolchain; the bare name reads better and means the
    // same thing to whoever copies the line.
    let program = match program.file_stem() {
        Some(stem) if stem == "cargo" => "cargo".to_owned(),
        _ => program.display().to_string(),
    };
    words.push(program);
    words.extend(cmd.get_args().map(|arg| quote(&arg.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with inherited stdio after printing it; fails if it does not exit with 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("$ {line}");
    let status = cmd.status().with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Like [`run`], but also copies everything the command prints into `log` (stdout and stderr
/// interleaved as they arrive), for runs whose output is read later, such as `xtask gpu`.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let line = display(cmd);
    eprintln!("$ {line}");
    let mut file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    writeln!(file, "$ {line}")?;
    let file = Arc::new(Mutex::new(file));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    // One thread per pipe: reading them in turn could block on one while the child fills the
    // other and stalls.
    let stdout = child.stdout.take().map(|pipe| tee(pipe, io::stdout(), Arc::clone(&file)));
    let stderr = child.stderr.take().map(|pipe| tee(pipe, io::stderr(), Arc::clone(&file)));
    let status = child.wait().with_context(|| format!("lost `{line}`"))?;
    for copier in [stdout, stderr].into_iter().flatten() {
        // A failed copy loses log lines, not the step's result: report it and go on.
        if let Err(err) = copier.join().unwrap_or_else(|_| Err(io::Error::other("panicked"))) {
            eprintln!("warning: copying the output of `{line}` to {}: {err}", log.display());
        }
    }
    if let Ok(mut file) = file.lock() {
        writeln!(file, "# {status}")?;
    }
    if !status.success() {
        bail!("`{line}` failed ({status}); its output is in {}", log.display());
    }
    Ok(())
}

fn tee(
    mut from: impl Read + Send + 'static,
    mut console: impl Write + Send + 'static,
    file: Arc<Mutex<File>>,
) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            // A console that went away must not stop the copy: the child would block on a full
            // pipe, and the log would lose the rest.
            let _ = console.write_all(&buf[..n]);
            let mut file = file.lock().map_err(|_| io::Error::other("log file lock poisoned"))?;
            file.write_all(&buf[..n])?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_the_shell_would_split() {
        let mut cmd = Command::new("cargo");
        cmd.args(["test", "--features", "a/b,c/d", "it's here"]).env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            display(&cmd),
            r"'RUSTDOCFLAGS=-D warnings' cargo test --features a/b,c/d 'it'\''s here'"
        );
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
