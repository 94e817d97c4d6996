#!/bin/bash
# podman-setup.sh: prepare a Debian 12 machine for the podman end-to-end test (tests/podman.rs).
# Run as root; idempotent; quiet. Installs podman, conmon, uidmap, slirp4netns and
# fuse-overlayfs from Debian (apt only when something is missing) and creates the test users.
# The test itself keeps podman's configuration, storage (vfs) and runtime dir in a temp dir of
# its own: nothing here touches the users' real podman setup.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || { echo "podman-setup.sh: run as root (sudo $0)" >&2; exit 1; }

# util-linux gives `script` (a pty for `podman run -it`); tar packs the busybox rootfs.
pkgs="podman conmon uidmap slirp4netns fuse-overlayfs util-linux tar"
install_missing podman-setup.sh $pkgs

# Rootless podman needs the user's subordinate ranges (scripts/test-users.sh writes them).
bash "$here/test-users.sh" >/dev/null
