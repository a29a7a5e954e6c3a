#!/usr/bin/env bash
# Sealing 1 GiB: peersync's crypto.Seal+Open (one process, through a pipe)
# against the age CLI doing the same (age -r | age -d), in the same session.
# Prints peak RSS and wall time of both. Usage: scripts/bench-seal.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
command -v age >/dev/null || { echo "needs the age CLI (apt-get install age)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

echo "== peersync crypto.Seal + crypto.Open, $mib MiB =="
PEERSYNC_SEAL_BENCH_MIB=$mib go test -run '^$' -bench 'BenchmarkSealOpen$' -benchtime 1x ./crypto/ | grep -E 'Benchmark|ok'

echo "== age CLI: age -r KEY | age -d -i identity, $mib MiB =="
mkdir -p "$work/home"
ssh-keygen -q -t ed25519 -N "" -f "$work/home/identity"   # the same key format as a peersync identity
pub=$(cut -d' ' -f1,2 "$work/home/identity.pub")
head -c $((mib << 20)) /dev/zero | tr '\0' 'p' > "$work/data"   # same kind of patterned data, from a file
/usr/bin/time -f "age -r : peak RSS %M KiB, %e s" age -r "$pub" -o "$work/sealed" "$work/data"
/usr/bin/time -f "age -d : peak RSS %M KiB, %e s" age -d -i "$work/home/identity" -o /dev/null "$work/sealed"
