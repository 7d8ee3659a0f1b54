//! `engram info`: what this build can run on and what it picked.

use anyhow::Context;
use engram_tensor::{Backend, cpu_threads, select_backend};
use serde::Serialize;

use crate::Failure;

#[derive(Debug, Serialize)]
struct Info {
    version: &'static str,
    backends: Vec<&'static str>,
    backend: &'static str,
    device: String,
    threads: usize,
}

pub(crate) fn run(requested: Option<&str>, json: bool) -> Result<(), Failure> {
    let backend =
        select_backend(requested).context("cannot choose a backend").map_err(Failure::Usage)?;
    let device = backend.device().context("cannot open the device").map_err(Failure::Runtime)?;
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        backends: Backend::compiled().into_iter().map(Backend::name).collect(),
        backend: backend.name(),
        device: format!("{device:?}"),
        threads: cpu_threads(),
    };
    if json {
        let text = serde_json::to_string_pretty(&info)
            .context("cannot serialise the report")
            .map_err(Failure::Runtime)?;
        println!("{text}");
    } else {
        println!("engram {}", info.version);
        println!("backends: {} (compiled in)", info.backends.join(", "));
        println!("backend:  {}", info.backend);
        println!("device:   {}", info.device);
        println!("threads:  {}", info.threads);
    }
    Ok(())
}
