//! Lays out the functions a launch runs next to each other in the release binary.
//!
//! `link/startup.order` (written by `scripts/link-order` from a profile of launches) lists them;
//! rust-lld places them first, in that order (`--symbol-ordering-file`). The kernel maps a
//! binary's text in 64 KiB windows around each page fault, so code spread over the whole text
//! costs page faults and resident memory at every start. Names missing from the binary (the
//! list is older than the code) are skipped silently.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/startup.order");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = std::path::Path::new(&dir).join("link/startup.order");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !release || !links_with_lld(&target) {
        return;
    }
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    // Relative relocations packed (DT_RELR, glibc >= 2.36): the start-up reads a few KiB of
    // them instead of 230 KiB of .rela.dyn.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}

/// rust-lld links x86_64-unknown-linux-gnu by default since Rust 1.90, unless turned off;
/// GNU ld would refuse the flag.
fn links_with_lld(target: &str) -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || flags.contains("-lld") || flags.contains("linker=") {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (...)"
    let text = String::from_utf8_lossy(&out.stdout);
    let minor = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
