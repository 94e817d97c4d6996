#!/bin/bash
# test-users.sh: create the unprivileged users the integration tests run as (run as root; idempotent).
#   nsbt        home dir, /bin/sh, a 65536-id range in /etc/subuid and /etc/subgid (not overlapping others)
#   nsbt-nosub  no subordinate ranges at all (tests of the "no subordinate range" path)
# Prints the users' uids.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "test-users.sh: run as root" >&2; exit 1; }
USER_SUB=nsbt
USER_NOSUB=nsbt-nosub
COUNT=65536

# SUB_*_COUNT=0 stops useradd from allocating ranges itself: ranges are written below, explicitly.
for u in "$USER_SUB" "$USER_NOSUB"; do
  id "$u" >/dev/null 2>&1 || useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$u"
done
touch /etc/subuid /etc/subgid

# has_range FILE USER UID: USER (by name or uid) has a range of at least $COUNT ids.
has_range() {
  awk -F: -v n="$2" -v u="$3" -v c="$COUNT" '($1==n || $1==u) && $3>=c {f=1} END{exit !f}' "$1"
}
# next_start FILE: the first id above every existing range (and at least 100000, as useradd does).
next_start() {
  awk -F: 'BEGIN{m=100000} NF>=3 {e=$2+$3; if (e>m) m=e} END{print m}' "$1"
}

uid=$(id -u "$USER_SUB")
for f in /etc/subuid /etc/subgid; do
  has_range "$f" "$USER_SUB" "$uid" || echo "$USER_SUB:$(next_start "$f"):$COUNT" >>"$f"
done

nosub_uid=$(id -u "$USER_NOSUB")
for f in /etc/subuid /etc/subgid; do
  if awk -F: -v n="$USER_NOSUB" -v u="$nosub_uid" '$1==n || $1==u {f=1} END{exit !f}' "$f"; then
    sed -i -e "/^$USER_NOSUB:/d" -e "/^$nosub_uid:/d" "$f"
  fi
done

range=$(awk -F: -v n="$USER_SUB" -v u="$uid" '$1==n || $1==u {print $2 ":" $3; exit}' /etc/subuid)
echo "$USER_SUB uid=$uid gid=$(id -g "$USER_SUB") subuid=$range"
echo "$USER_NOSUB uid=$nosub_uid gid=$(id -g "$USER_NOSUB") subuid=none"
