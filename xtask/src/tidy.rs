//! `cargo xtask tidy`: the repository rules that a compiler does not check. The same checks run
//! as a unit test, so `cargo test --workspace` enforces them too.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::manifest::Manifest;
use crate::run::workspace_root;

/// Folders whose `.rs` files follow the rules.
const SOURCE_DIRS: [&str; 3] = ["crates", "xtask", "benches"];

/// Longer files are split into modules (house style: "keep files under about 600 lines").
const MAX_LINES: usize = 600;

/// Dependencies only binaries may have: libraries return typed errors (not anyhow), take no
/// command lines (clap) and keep benchmarks in benches/ (criterion).
const BINARY_ONLY_DEPENDENCIES: [&str; 3] = ["clap", "anyhow", "criterion"];

/// The packages under crates/ that are binaries and so exempt from the rule above.
const BINARY_CRATES: [&str; 1] = ["engram-cli"];

pub fn tidy() -> Result<()> {
    let violations = check(&workspace_root())?;
    if violations.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for violation in &violations {
        eprintln!("{violation}");
    }
    bail!("tidy: {} violation(s)", violations.len())
}

/// Every violation in the repository at `root`, as `path: what is wrong`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut violations = Vec::new();
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        rust_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    for file in &files {
        let text =
            fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let shown = relative(root, file);
        if !text.lines().next().is_some_and(|line| line.starts_with("//!")) {
            violations.push(format!("{shown}: does not start with a `//!` doc line"));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            violations
                .push(format!("{shown}: {lines} lines, over {MAX_LINES}; split it into modules"));
        }
    }
    for manifest in library_crates(root)? {
        let shown = relative(root, &manifest.dir.join("Cargo.toml"));
        for dep in &manifest.dependencies {
            if BINARY_ONLY_DEPENDENCIES.contains(&dep.as_str()) {
                violations.push(format!(
                    "{shown}: library crate `{}` depends on `{dep}`, which only binaries may use",
                    manifest.name
                ));
            }
        }
    }
    Ok(violations)
}

/// The `.rs` files below `dir`, skipping build output and hidden folders.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, files)?;
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Every package under crates/ except the binaries.
fn library_crates(root: &Path) -> Result<Vec<Manifest>> {
    let crates = root.join("crates");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&crates)
        .with_context(|| format!("listing {}", crates.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    let manifests = dirs.iter().map(|dir| Manifest::read(dir)).collect::<Result<Vec<_>>>()?;
    Ok(manifests.into_iter().filter(|m| !BINARY_CRATES.contains(&m.name.as_str())).collect())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_is_tidy() {
        let violations = check(&workspace_root()).unwrap();
        assert!(violations.is_empty(), "tidy violations:\n{}", violations.join("\n"));
    }

    #[test]
    fn flags_missing_docs_long_files_and_binary_dependencies() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let lib = root.join("crates/engram-lib");
        fs::create_dir_all(lib.join("src")).unwrap();
        fs::create_dir_all(root.join("crates/engram-cli/src")).unwrap();
        let manifest = "[package]\nname = \"engram-lib\"\n\
            [dependencies]\nanyhow = \"1\"\n[dev-dependencies]\nclap = \"4\"\n";
        fs::write(lib.join("Cargo.toml"), manifest).unwrap();
        fs::write(lib.join("src/lib.rs"), "//! Fine.\n").unwrap();
        fs::write(lib.join("src/bare.rs"), "fn main() {}\n").unwrap();
        fs::write(lib.join("src/long.rs"), format!("//! Long.\n{}", "\n".repeat(MAX_LINES)))
            .unwrap();
        let cli = root.join("crates/engram-cli");
        fs::write(
            cli.join("Cargo.toml"),
            "[package]\nname = \"engram-cli\"\n[dependencies]\nclap = \"4\"\n",
        )
        .unwrap();
        fs::write(cli.join("src/main.rs"), "//! The binary.\n").unwrap();
        let violations = check(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(violations.len(), 3, "{violations:#?}");
        assert!(violations[0].starts_with("crates/engram-lib/src/bare.rs: does not start"));
        assert!(violations[1].starts_with("crates/engram-lib/src/long.rs: 601 lines"));
        assert!(violations[2].contains("`engram-lib` depends on `anyhow`"));
    }
}
