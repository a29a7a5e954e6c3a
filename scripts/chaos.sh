#!/usr/bin/env bash
# Process-level chaos, long form: TestChaosKill9 (examples/desktop) with
# many kill -9 rounds. Four desktop daemons sync one folder in a full mesh on
# loopback while a writer edits, adds and deletes files on random daemons and
# one daemon at a time is killed with SIGKILL at a random moment and
# restarted; at the end the four trees and heads must agree, every commit
# seen during the run must be in every history, and git fsck --strict must
# be clean. CI runs 20 rounds; this runs 200 by default.
#
# Usage: scripts/chaos.sh [ROUNDS] [REPEATS]   (defaults 200 and 1)
# Each repeat uses a fresh random seed, printed in the log ("seed N"). The
# full log (daemon logs included on failure) goes to $CHAOS_LOG, else to a
# temporary file named at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-200}
repeats=${2:-1}
command -v git >/dev/null || { echo "needs the git CLI (apt-get install git)" >&2; exit 1; }
log=${CHAOS_LOG:-$(mktemp)}
for i in $(seq 1 "$repeats"); do
  echo "== chaos run $i of $repeats: $rounds rounds =="
  status=0
  PEERSYNC_CHAOS_ROUNDS=$rounds go test -count=1 -timeout 0 -run '^TestChaosKill9$' -v ./examples/desktop/ >"$log" 2>&1 || status=$?
  grep -E 'seed|rounds|converged|waiting|^(--- |ok|FAIL)' "$log" || true
  if [ "$status" != 0 ]; then
    tail -n 300 "$log"
    echo "chaos run $i FAILED (exit $status); full log: $log" >&2
    exit 1
  fi
done
echo "full log: $log"
