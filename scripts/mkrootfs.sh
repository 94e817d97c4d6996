#!/bin/bash
# mkrootfs.sh DIR: build a minimal busybox root filesystem in DIR (idempotent).
#   bin/       Debian's static busybox and a symlink for every applet it lists
#   proc dev sys etc root   empty mount points / dirs (0755); tmp (1777)
#   etc/passwd etc/group    root, nobody (65534) and user (1000)
# Needs a static /bin/busybox (package busybox-static; scripts/setup.sh installs it).
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
bb=/bin/busybox
[ -x "$bb" ] || { echo "mkrootfs.sh: $bb not found: install busybox-static (scripts/setup.sh)" >&2; exit 1; }
# A dynamically linked busybox would not run inside a rootfs without its libraries.
case $(LC_ALL=C ldd "$bb" 2>&1 || true) in
  *"not a dynamic executable"*) ;;
  *) echo "mkrootfs.sh: $bb is dynamically linked: install busybox-static instead of busybox" >&2
     exit 1 ;;
esac

umask 022
mkdir -p "$dir"/{bin,proc,dev,sys,tmp,etc,root}
chmod 0755 "$dir" "$dir"/{bin,proc,dev,sys,etc,root}
chmod 1777 "$dir/tmp"
cp -f "$bb" "$dir/bin/busybox.new" && mv -f "$dir/bin/busybox.new" "$dir/bin/busybox"
chmod 0755 "$dir/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sfn busybox "$dir/bin/$applet"
done
cat >"$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/tmp:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$dir/etc/group" <<'GROUP'
root:x:0:
user:x:1000:
nogroup:x:65534:
GROUP
chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
