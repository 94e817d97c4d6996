//! Builds the sealed exec helper, and lays out the functions a launch runs next to each other
//! in the release binary.
//!
//! The exec helper (`src/process/exec-helper.S`, laid out by `exec-helper.ld`) is assembled and
//! linked with binutils' `as` and `ld` into `$OUT_DIR/exec-helper`, which `trampoline.rs`
//! embeds: a static position-independent ELF of a few hundred bytes.
//!
//! `link/startup.order` (written by `scripts/link-order` from a profile of launches) lists them;
//! rust-lld places them first, in that order (`--symbol-ordering-file`). The kernel maps a
//! binary's text in 64 KiB windows around each page fault, so code spread over the whole text
//! costs page faults and resident memory at every start. Names missing from the binary (the
//! list is older than the code) are skipped silently.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/startup.order");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    if std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64") {
        exec_helper(Path::new(&dir));
    }
    let order = Path::new(&dir).join("link/startup.order");
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

/// Assembles and links the exec helper with binutils for x86_64: the host's own `as` and `ld`,
/// or the cross ones (Debian's binutils-x86-64-linux-gnu) when the build runs elsewhere.
fn exec_helper(dir: &Path) {
    let src = dir.join("src/process/exec-helper.S");
    let script = dir.join("src/process/exec-helper.ld");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", script.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("exec-helper.o");
    let prefix = if cfg!(target_arch = "x86_64") {
        ""
    } else {
        "x86_64-linux-gnu-"
    };
    run(Command::new(format!("{prefix}as"))
        .args(["--64", "-o"])
        .args([&obj, &src]));
    // -pie --no-dynamic-linker: ET_DYN without an interpreter, loaded anywhere; -z text: an
    // absolute address (a relocation no loader would apply) fails the link.
    run(Command::new(format!("{prefix}ld"))
        .args([
            "-pie",
            "--no-dynamic-linker",
            "-z",
            "text",
            "--build-id=none",
            "-s",
            "-T",
        ])
        .arg(&script)
        .arg("-o")
        .args([out.join("exec-helper"), obj]));
}

fn run(cmd: &mut Command) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building the exec helper: {cmd:?} failed ({s}), see its messages above"),
        Err(e) => {
            panic!("building the exec helper: {cmd:?}: {e}: install binutils (scripts/setup.sh)")
        }
    }
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
