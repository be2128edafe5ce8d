#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), from Fuzz/Corpus/<target> (copied to a
# scratch directory, so the committed seeds stay small), after replaying every input in
# Fuzz/Regressions/<target>. A crash, leak, timeout or out-of-memory input is written to
# Fuzz/Regressions/<target>/ (commit it: it is a regression test from then on) and the run fails.
# Prints one line per target: executions, and crashes found.
#
#   Fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json json-document bayeux gws voicenter verba socketio config masking azure graph acs report control)
bin=.build/release
scratch=$(mktemp -d /tmp/mutewarden-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failed=0
for target in "${targets[@]}"; do
  binary="$bin/fuzz-$target"
  regressions="Regressions/$target"
  mkdir -p "$regressions" "$scratch/$target"
  cp -r "Corpus/$target/." "$scratch/$target/" 2>/dev/null || true
  # Every input that ever crashed a target must now pass.
  if compgen -G "$regressions/*" >/dev/null; then
    if ! "$binary" -timeout=10 -rss_limit_mb=2048 "$regressions"/* >"$scratch/$target-replay.log" 2>&1; then
      echo "fuzz-$target: a regression input fails again:" >&2
      tail -40 "$scratch/$target-replay.log" >&2
      failed=1
      continue
    fi
  fi
  log="$scratch/$target.log"
  status=0
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$regressions/" -print_final_stats=1 "$scratch/$target" >"$log" 2>&1 || status=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  found=$(find "$regressions" -newer "$scratch" -type f | wc -l)
  echo "fuzz-$target: $runs executions in ${seconds}s, $found crash(es) found"
  if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    grep -E "ERROR|Fatal error|SUMMARY|deadly signal" "$log" | head -5 >&2 || true
    failed=1
  fi
done
exit $failed
