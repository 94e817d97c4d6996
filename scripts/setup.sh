#!/bin/bash
# setup.sh: prepare a Debian 12 machine to build and test nsboot (run as root; idempotent; quiet).
#   - installs the build and test dependencies from Debian (apt only when something is missing)
#   - makes /dev/fuse usable by users, as Debian's udev rule does
#   - checks that a Rust toolchain (cargo) is present
#   - creates the unprivileged test users (scripts/test-users.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (sudo $0)" >&2; exit 1; }

# uidmap: newuidmap/newgidmap (subordinate-range mappings); busybox-static: the test rootfs;
# libseccomp-dev + pkg-config: nsboot links the system's libseccomp.a (static build);
# hyperfine + jq: benchmarks and bundle editing in scripts; fuse-overlayfs: rootless --overlay;
# binutils (as, ld): build.rs assembles the exec helper (src/process/exec-helper.S);
# criu: checkpoint/restore (tests/checkpoint, run for real in the VM's cgv2-root).
pkgs="uidmap busybox-static libseccomp-dev pkg-config hyperfine jq fuse-overlayfs binutils criu"
install_missing setup.sh $pkgs

# Rootless `do --overlay` runs fuse-overlayfs, which opens /dev/fuse as the calling user.
# Debian's udev rule makes the node 0666; machines without udev (containers, CI) leave 0600.
if [ ! -e /dev/fuse ]; then
  mknod -m 0666 /dev/fuse c 10 229 || echo "setup.sh: no /dev/fuse: rootless --overlay falls back to the kernel's overlayfs" >&2
fi
[ -c /dev/fuse ] && chmod 0666 /dev/fuse

# The toolchain is provisioned with the machine (rustup puts it in ~/.cargo/bin).
if ! command -v cargo >/dev/null && [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  echo "setup.sh: cargo not found: install a Rust toolchain (>= 1.80), e.g. from https://rustup.rs" >&2
  exit 1
fi

bash "$here/test-users.sh" >/dev/null
