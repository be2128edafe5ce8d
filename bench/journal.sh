#!/usr/bin/env bash
# Runs mutewarden-journal-bench against a private systemd-journald, then checks that journald
# stored every record it was sent (a rate that loses records would be no rate at all).
#
#   bench/journal.sh BENCH_BINARY [bench options...]
#
# journald and the benchmark both use the fixed /run/systemd/journal/socket, so each runs in a
# mount namespace of its own with the same temporary directory bind-mounted over /run: the host's
# journal is never written. The journald configuration matches the tests' (volatile storage, no
# rate limit). Needs root.
set -euo pipefail
bench=$1
shift
journald=/lib/systemd/systemd-journald
[ -x "$journald" ] || journald=/usr/lib/systemd/systemd-journald

work=$(mktemp -d /tmp/mutewarden-bench.XXXXXX)
journald_pid=""
cleanup() {
  if [ -n "$journald_pid" ]; then kill "$journald_pid" 2>/dev/null || true; wait "$journald_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/run" "$work/etc-systemd"
cat >"$work/etc-systemd/journald.conf" <<'CONF'
[Journal]
Storage=volatile
RuntimeMaxUse=4G
RateLimitIntervalSec=0
RateLimitBurst=0
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
CONF

unshare --mount --propagation private /bin/sh -c \
  'mount --bind "$1/run" /run && mount --bind "$1/etc-systemd" /etc/systemd && exec "$2"' \
  sh "$work" "$journald" >"$work/journald.log" 2>&1 &
journald_pid=$!
for _ in $(seq 1 500); do
  [ -S "$work/run/systemd/journal/socket" ] && break
  sleep 0.02
done
[ -S "$work/run/systemd/journal/socket" ] || { cat "$work/journald.log" >&2; echo "journald did not start" >&2; exit 1; }

out=$(unshare --mount --propagation private /bin/sh -c 'mount --bind "$1" /run && shift && exec "$@"' \
  sh "$work/run" "$bench" --sink journal "$@")
echo "$out"
sent=$(echo "$out" | sed -n 's/.*, \([0-9]*\) records sent$/\1/p')

# journald may still be writing the last datagrams it has queued.
stored=0
for _ in $(seq 1 60); do
  stored=$(journalctl --directory="$work/run/log/journal" -q -o cat SYSLOG_IDENTIFIER=mutewarden | wc -l)
  [ "$stored" -ge "$sent" ] && break
  sleep 1
done
echo "journald stored $stored of $sent records"
[ "$stored" -eq "$sent" ]
