#!/bin/bash
# engines-setup.sh: prepare a Debian 12 machine for the engine end-to-end tests (tests/engines.rs):
# root podman, containerd driven with `ctr`, pods through containerd's CRI, and Docker, each with
# runc and with nsboot as its runtime. Run as root; idempotent; quiet. Installs Debian's
# containerd, docker.io, podman, runc, the CNI plugins and protoc (the CRI test's client,
# tests/cri-client, compiles the CRI's protobuf) (apt only when something is missing). Nothing is started or configured here: each test starts
# its own daemon with its own root, state dir, socket and config in a temp dir, and stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || { echo "engines-setup.sh: run as root (sudo $0)" >&2; exit 1; }

# Installing docker.io or containerd starts their system daemons where an init system runs
# (creating docker0 and iptables rules): the tests need none of that, so policy-rc.d (which
# invoke-rc.d and deb-systemd-invoke obey) forbids starting services during this install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi

# util-linux gives `script` (a pty for -it), `unshare` and `nsenter`; tar packs the busybox
# image; the CRI test's pods get a CNI bridge (containernetworking-plugins) in a network
# namespace whose loopback iproute2 brings up.
pkgs="containerd docker.io podman conmon runc util-linux tar containernetworking-plugins \
  protobuf-compiler iproute2"
install_missing engines-setup.sh $pkgs

