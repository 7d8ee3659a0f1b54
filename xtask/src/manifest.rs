//! Just enough of `Cargo.toml` for xtask: a package's name and the names of its dependencies.
//!
//! xtask depends on anyhow alone, so this reads the few keys it needs line by line instead of
//! parsing TOML. It understands the forms this repository writes (`[dependencies]` tables with
//! `name = ...` or `name.workspace = true`, `[dependencies.name]`, target-specific tables,
//! arrays over several lines); anything fancier should be written plainly instead.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// What xtask knows about one package.
#[derive(Debug, Default, PartialEq)]
pub struct Manifest {
    /// The folder that holds the `Cargo.toml`.
    pub dir: PathBuf,
    /// `[package] name`.
    pub name: String,
    /// Normal dependencies (also target-specific ones), by crate name: a renamed dependency is
    /// listed under both names. Dev- and build-dependencies are not.
    pub dependencies: Vec<String>,
}

impl Manifest {
    /// Reads `dir/Cargo.toml`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join("Cargo.toml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut manifest = Manifest::parse(&text);
        manifest.dir = dir.to_path_buf();
        Ok(manifest)
    }

    /// Reads the keys xtask needs from a manifest's text; `dir` is left empty.
    pub fn parse(text: &str) -> Manifest {
        let mut manifest = Manifest::default();
        for entry in entries(text) {
            let section = entry.section.as_str();
            if let Some(name) = dependency_table(section) {
                manifest.dependencies.push(name.to_owned());
                if entry.key == "package" {
                    manifest.dependencies.push(unquote(&entry.value));
                }
            } else if is_dependencies(section) {
                manifest.dependencies.push(entry.key.clone());
                if let Some(renamed) = inline_value(&entry.value, "package") {
                    manifest.dependencies.push(renamed);
                }
            } else if section == "package" && entry.key == "name" {
                manifest.name = unquote(&entry.value);
            }
        }
        manifest.dependencies.dedup();
        manifest
    }
}

/// One `key = value` line (the value may span several lines), with the table it sits in.
#[derive(Debug)]
struct Entry {
    section: String,
    /// The first segment of a dotted key: `anyhow` for `anyhow.workspace = true`.
    key: String,
    value: String,
}

fn entries(text: &str) -> impl Iterator<Item = Entry> + '_ {
    let mut section = String::new();
    let mut open: Option<Entry> = None;
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = strip_comment(raw).trim();
        if let Some(entry) = open.as_mut() {
            // Inside a value that spans lines: add to it until its brackets balance.
            entry.value.push(' ');
            entry.value.push_str(line);
            if depth(&entry.value) <= 0 {
                out.extend(open.take());
            }
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            let key = key.trim().split('.').next().unwrap_or_default();
            let entry =
                Entry { section: section.clone(), key: unquote(key), value: value.trim().into() };
            if depth(&entry.value) > 0 { open = Some(entry) } else { out.push(entry) }
        }
    }
    out.extend(open);
    out.into_iter()
}

/// `dependencies` or `target.'cfg(...)'.dependencies`.
fn is_dependencies(section: &str) -> bool {
    section == "dependencies"
        || (section.starts_with("target.") && section.ends_with(".dependencies"))
}

/// The crate of a `[dependencies.name]` table (or its target-specific form).
fn dependency_table(section: &str) -> Option<&str> {
    let (table, name) = section.rsplit_once('.')?;
    is_dependencies(table).then_some(name.trim_matches('"'))
}

/// The value of `key = "..."` inside an inline table such as `{ package = "clap" }`.
fn inline_value(value: &str, key: &str) -> Option<String> {
    let inner = value.trim().strip_prefix('{')?.strip_suffix('}')?;
    inner.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| unquote(v))
    })
}

/// Bracket depth at the end of `value`, outside strings: above 0 while an array is open.
fn depth(value: &str) -> i32 {
    let mut depth = 0;
    let mut quote = None;
    for c in value.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// The line up to a `#` that is not inside a string.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

fn unquote(value: &str) -> String {
    value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[package]
name = "engram-demo" # a comment
version.workspace = true

[features]
default = ["flex"]
wgpu = [
    "engram-tensor/wgpu", # the GPU
]
"x86-v4" = []

[dependencies]
anyhow.workspace = true
cli = { package = "clap", version = "4" }
engram-tensor = { workspace = true, default-features = false }

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[dependencies.serde]
version = "1"

[dev-dependencies]
criterion.workspace = true
"#;

    #[test]
    fn reads_the_name_and_dependencies() {
        let manifest = Manifest::parse(MANIFEST);
        assert_eq!(manifest.name, "engram-demo");
        assert_eq!(
            manifest.dependencies,
            ["anyhow", "cli", "clap", "engram-tensor", "libc", "serde"]
        );
    }
}
