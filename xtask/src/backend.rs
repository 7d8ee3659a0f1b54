//! The backends xtask builds for, the cargo flags that compile one in, and the Vulkan check
//! that the wgpu backend needs on Linux.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::UsageError;

/// Mirrors `engram_tensor::Backend`; xtask cannot depend on engram-tensor (that would build burn
/// before any chore could run), so the names are repeated here and must stay in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Flex,
    Ndarray,
    Wgpu,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Flex, Backend::Ndarray, Backend::Wgpu];

    /// The feature name, which is also the `ENGRAM_BACKEND` value.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Parses a `--backend` value; an unknown name is a usage error.
    pub fn parse(name: &str) -> Result<Backend> {
        match Backend::ALL.into_iter().find(|b| b.name() == name.trim().to_ascii_lowercase()) {
            Some(backend) => Ok(backend),
            None => Err(UsageError(format!("unknown backend `{name}` (flex, ndarray or wgpu)")))?,
        }
    }

    /// Cargo flags that build with this backend alone: none for flex, the default everywhere,
    /// so that the plain build's cache is reused; otherwise `--no-default-features --features
    /// <backend>`.
    ///
    /// A bare feature name is enough in a virtual workspace: cargo enables it in every selected
    /// package that has it (xtask has none) and fails only if none does.
    pub fn cargo_flags(self) -> Vec<String> {
        match self {
            Backend::Flex => Vec::new(),
            other => vec!["--no-default-features".into(), "--features".into(), other.name().into()],
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the Vulkan loader looks for drivers (ICD manifests) on Linux.
const ICD_DIRS: [&str; 3] =
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];

/// NVIDIA's driver mount in containers: it holds an ICD that the loader does not search, so it
/// is handed over through `VK_DRIVER_FILES`.
const NVIDIA_ICD_DIR: &str = "/usr/local/nvidia/share/vulkan/icd.d";

/// Folders that commonly hold the Vulkan loader, for machines without `ldconfig`.
const LIB_DIRS: [&str; 6] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/local/lib",
];

const VULKAN_HELP: &str = "wgpu runs on Vulkan on Linux. On Debian or Ubuntu, \
    `apt-get install mesa-vulkan-drivers libvulkan1` gives the loader and Mesa's drivers \
    (lavapipe runs on the CPU, so the wgpu build can be tested without a GPU); NVIDIA's driver \
    ships its own ICD file, which VK_DRIVER_FILES can point to";

/// Checks that wgpu will find a Vulkan loader and driver, before a long build finds out.
///
/// Returns environment variables the wgpu steps need: `VK_DRIVER_FILES` when the only driver is
/// NVIDIA's container mount. Other systems use Metal or DirectX and need nothing.
///
/// # Errors
/// When the loader or every driver is missing, with how to install them.
pub fn vulkan_env() -> Result<Vec<(String, String)>> {
    if !cfg!(target_os = "linux") {
        return Ok(Vec::new());
    }
    if !vulkan_loader_present() {
        bail!("no Vulkan loader (libvulkan.so.1) found. {VULKAN_HELP}");
    }
    for var in ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"] {
        if let Some(files) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let listed: Vec<PathBuf> = std::env::split_paths(&files).collect();
            if listed.iter().any(|f| f.is_file()) {
                return Ok(Vec::new());
            }
            bail!("{var} lists no existing file ({}). {VULKAN_HELP}", files.to_string_lossy());
        }
    }
    if ICD_DIRS.iter().any(|dir| !icd_files(Path::new(dir)).is_empty()) {
        return Ok(Vec::new());
    }
    let nvidia = icd_files(Path::new(NVIDIA_ICD_DIR));
    if !nvidia.is_empty() {
        let files = std::env::join_paths(&nvidia)?.to_string_lossy().into_owned();
        eprintln!("using NVIDIA's Vulkan driver from {NVIDIA_ICD_DIR} (VK_DRIVER_FILES={files})");
        return Ok(vec![("VK_DRIVER_FILES".into(), files)]);
    }
    bail!("no Vulkan driver found: no ICD *.json in {}. {VULKAN_HELP}", ICD_DIRS.join(", "))
}

fn icd_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn vulkan_loader_present() -> bool {
    const LOADER: &str = "libvulkan.so.1";
    let in_cache = ["ldconfig", "/sbin/ldconfig"].iter().any(|ldconfig| {
        Command::new(ldconfig)
            .arg("-p")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(LOADER))
    });
    let library_path = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
    in_cache
        || std::env::split_paths(&library_path)
            .chain(LIB_DIRS.iter().map(PathBuf::from))
            .any(|dir| dir.join(LOADER).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_default_backends_turn_the_defaults_off() {
        assert!(Backend::Flex.cargo_flags().is_empty());
        assert_eq!(Backend::Wgpu.cargo_flags(), ["--no-default-features", "--features", "wgpu"]);
    }

    #[test]
    fn backend_names_parse_and_unknown_ones_are_usage_errors() {
        for backend in Backend::ALL {
            assert_eq!(Backend::parse(backend.name()).unwrap(), backend);
        }
        assert!(Backend::parse("cuda").unwrap_err().is::<UsageError>());
    }
}
