#!/bin/bash
# podman-setup.sh: prepare a Debian 12 machine for the podman end-to-end test (tests/podman.rs).
# Run as root; idempotent; quiet. Installs podman, conmon, uidmap, slirp4netns and
# fuse-overlayfs from Debian (apt only when something is missing) and creates the test users.
# The test itself keeps podman's configuration, storage (vfs) and runtime dir in a temp dir of
# its own: nothing here touches the users' real podman setup.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "podman-setup.sh: run as root (sudo $0)" >&2; exit 1; }

# util-linux gives `script` (a pty for `podman run -it`); tar packs the busybox rootfs.
pkgs="podman conmon uidmap slirp4netns fuse-overlayfs util-linux tar"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "podman-setup.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

# Rootless podman needs the user's subordinate ranges (scripts/test-users.sh writes them).
bash "$here/test-users.sh" >/dev/null
