#!/usr/bin/env bash
# bench-oldnew.sh: the Go benchmarks two revisions share, run alternately
# (old, new, old, new, ...) so that load drift on a shared machine hits both
# sides alike; prints the median of each metric per side and new/old.
#
#   scripts/bench-oldnew.sh OLD_REV [NEW_REV] [ROUNDS]
#
# NEW_REV defaults to the working tree, ROUNDS to 3. Env BENCH_SETS
# overrides the list of "package:regexp:benchtime" triples.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench-oldnew.sh OLD_REV [NEW_REV] [ROUNDS]}
NEW=${2:-}
ROUNDS=${3:-3}
SETS=${BENCH_SETS:-"./gitstore:^Benchmark(ScanNewFiles|RescanUnchanged|BundleOneCommit|BundleFull)\$:3x
./gitstore:^BenchmarkApplyBundleMemory\$:1x
./crypto:^BenchmarkSealOpen\$:5x
./transport:^BenchmarkThroughput\$:2x
./sync:^BenchmarkEditLatency\$:10x"}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-oldnew.XXXXXX")
trap 'git -C "$ROOT" worktree remove --force "$W/old" >/dev/null 2>&1 || true; [ -n "$NEW" ] && git -C "$ROOT" worktree remove --force "$W/new" >/dev/null 2>&1; rm -rf "$W"' EXIT
git -C "$ROOT" worktree add -q --detach "$W/old" "$OLD"
NEWDIR=$ROOT
if [ -n "$NEW" ]; then git -C "$ROOT" worktree add -q --detach "$W/new" "$NEW"; NEWDIR=$W/new; fi
for r in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    dir=$W/old; [ "$side" = new ] && dir=$NEWDIR
    while IFS=: read -r pkg re bt; do
      [ -z "$pkg" ] && continue
      (cd "$dir" && go test -run '^$' -bench "$re" -benchtime "$bt" -count 1 "$pkg" 2>&1) |
        grep -E '^Benchmark' >>"$W/$side.txt" || echo "warning: $side $pkg $re: no result" >&2
    done <<<"$SETS"
  done
  echo "round $r done" >&2
done
python3 - "$W/old.txt" "$W/new.txt" <<'PY'
import re, statistics, sys
def load(p):
    out = {}
    for line in open(p):
        f = line.split()
        name = re.sub(r'-\d+$', '', f[0])
        for i in range(2, len(f) - 1, 2):
            try: v = float(f[i])
            except ValueError: continue
            out.setdefault((name, f[i + 1]), []).append(v)
    return out
old, new = load(sys.argv[1]), load(sys.argv[2])
print(f"| benchmark | metric | old (median) | new (median) | new/old |")
print(f"| --- | --- | ---: | ---: | ---: |")
for k in sorted(old):
    if k not in new: continue
    o, n = statistics.median(old[k]), statistics.median(new[k])
    r = n / o if o else float('nan')
    print(f"| {k[0]} | {k[1]} | {o:.4g} | {n:.4g} | {r:.2f} |")
PY
