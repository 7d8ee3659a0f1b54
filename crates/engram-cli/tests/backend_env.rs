//! `ENGRAM_BACKEND` naming a backend this build lacks must fail with a usage error that lists
//! the backends it has.

use std::process::Command;

#[test]
#[cfg(not(feature = "wgpu"))]
fn engram_backend_naming_a_missing_backend_fails_with_the_available_ones() {
    let output = Command::new(env!("CARGO_BIN_EXE_engram"))
        .arg("info")
        .env("ENGRAM_BACKEND", "wgpu")
        .output()
        .expect("the engram binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("backend `wgpu` is not compiled in (available: "), "{stderr}");
}

#[test]
fn the_flag_wins_over_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_engram"))
        .args(["info", "--json", "--backend"])
        .arg(engram_tensor::Backend::compiled()[0].name())
        .env("ENGRAM_BACKEND", "no-such-backend")
        .output()
        .expect("the engram binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
