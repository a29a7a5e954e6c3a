#!/usr/bin/env bash
# Runs every native Go fuzz target of the module for the same time, all at
# once (one worker each, at low priority), and prints each target's last
# status line (elapsed, execs, new interesting inputs). A crash leaves its
# input under the package's testdata/fuzz/ and makes the script exit 1.
#
# Usage: scripts/fuzz-all.sh [DURATION] [REGEXP]   (default 10m, all targets)
set -uo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10m}"
only="${2:-.}"
out="$(mktemp -d)"
pids=()
names=()
while IFS=: read -r file _ decl; do
  name="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$decl")"
  [[ "$name" =~ $only ]] || continue
  pkg="$(dirname "$file")"
  names+=("$pkg $name")
  nice -n 19 go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" -parallel 1 -timeout 0 "$pkg" \
    >"$out/${name}.log" 2>&1 &
  pids+=($!)
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v '^./vendor/')
fail=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail=1
  n="${names[$i]}"
  last="$(grep -E 'fuzz: elapsed' "$out/${n#* }.log" | tail -1)"
  status="$(tail -1 "$out/${n#* }.log")"
  printf '%-32s %-22s %s | %s\n' "$n" "" "$last" "$status"
done
echo "logs in $out"
exit $fail
