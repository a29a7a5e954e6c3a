#!/usr/bin/env bash
# bench-gitstore.sh: gitstore benchmarks beside the git CLI, same data, same
# session. Prints the figures and appends a section to BENCHMARKS.md.
#
#   scripts/bench-gitstore.sh                      # 10k files in 1 folder
#   PEERSYNC_BENCH_FILES=100000 PEERSYNC_BENCH_DIRS=1000 scripts/bench-gitstore.sh
#
#   BENCH_ONLY=large PEERSYNC_BENCH_LARGE_MIB=1024 scripts/bench-gitstore.sh
#
#   BENCH_ONLY=rescan PEERSYNC_BENCH_FILES=100000 PEERSYNC_BENCH_DIRS=1000 scripts/bench-gitstore.sh
#   BENCH_ONLY=apply PEERSYNC_BENCH_FILES=100000 PEERSYNC_BENCH_DIRS=1000 scripts/bench-gitstore.sh
#
#   BENCH_ONLY=full PEERSYNC_BENCH_FILES=100000 PEERSYNC_BENCH_DIRS=20 nice -n 10 scripts/bench-gitstore.sh
#
# Env: PEERSYNC_BENCH_FILES (default 10000), PEERSYNC_BENCH_DIRS (default 1),
# BENCH_ONLY (space-separated subset of: import rescan bundle large apply
# full; default import rescan bundle), PEERSYNC_BENCH_LARGE_MIB (default 1024),
# PEERSYNC_BENCH_FULL_RUNS (default 1: iterations of "full", averaged),
# BENCH_NO_APPEND=1 to only print. Ratios are ours/git (lower is better).
# "apply" (a first sync: the bundle of the whole N-commit history applied to
# an empty store, peak heap and RSS) makes its own data and compares with
# `git clone` of the same bundle. "full" (the bundle of a whole N-commit
# history, a first sync to a peer that has nothing) makes its own store
# (PEERSYNC_BENCH_STORE_DIR keeps it for the next run) and times
# `git bundle create f main` on the same .peersync in the same iteration.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${PEERSYNC_BENCH_FILES:-10000}
D=${PEERSYNC_BENCH_DIRS:-1}
ONLY=${BENCH_ONLY:-import rescan bundle}
need_data=
for k in $ONLY; do case "$k" in import | rescan | bundle) need_data=1 ;; esac; done
export PEERSYNC_BENCH_FILES=$N PEERSYNC_BENCH_DIRS=$D
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-gitstore.XXXXXX")
trap 'rm -rf "$W"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", b-a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b>0) printf "%.2f", a/b; else print "n/a"}'; }
has() { [[ " $ONLY " == *" $1 "* ]]; }

echo "building test binary..." >&2
(cd "$ROOT" && go test -c -o "$W/gitstore.test" ./gitstore)
folder_bytes=0
if [ -n "$need_data" ]; then
	echo "generating $N files in $D folder(s)..." >&2
	PEERSYNC_BENCH_GEN_DIR="$W/gen" "$W/gitstore.test" -test.run '^TestBenchGenerate$' >/dev/null
	folder_bytes=$(du -sb "$W/gen/tree" | cut -f1)
fi

# ours: run one benchmark once, print seconds per op and the extra metrics line.
ours() { # name benchtime
	(cd "$ROOT/gitstore" && "$W/gitstore.test" -test.run '^$' -test.bench "^$1\$" -test.benchtime "$2" -test.benchmem) |
		awk -v name="$1" '$1 ~ "^"name {print}'
}
nsop() { awk '{for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") {printf "%.3f", $i/1e9; exit}}'; }
metric() { awk -v m="$1" '{for (i=1;i<=NF;i++) if ($(i+1)==m) {print $i; exit}}'; }

if [ -n "$need_data" ]; then
	git init -q --bare -b main "$W/fi.git"
	t0=$(now); git --git-dir="$W/fi.git" fast-import --quiet <"$W/gen/import.stream"; t1=$(now)
	git_import=$(secs "$t0" "$t1")
	git_repo_bytes=$(du -sb "$W/fi.git/objects" | cut -f1)
fi

results=()
if has import; then
	line=$(ours BenchmarkScanNewFiles 1x)
	our_import=$(nsop <<<"$line")
	our_repo_bytes=$(metric repo-bytes <<<"$line")
	our_obj_bytes=$(metric objects-bytes <<<"$line")
	results+=("import|commit $N new files in $D folder(s), one commit each|\`go test -bench '^BenchmarkScanNewFiles\$' -benchtime 1x\` vs \`git fast-import\`|${our_import}s, objects $our_obj_bytes B (.peersync $our_repo_bytes B, $(ratio "$our_repo_bytes" "$folder_bytes")× the folder)|${git_import}s, objects $git_repo_bytes B|time $(ratio "$our_import" "$git_import"), objects size $(ratio "$our_obj_bytes" "$git_repo_bytes")|time ≤ 0.5, size ≤ 1.1 (100k/1000)")
fi

if has rescan; then
	gd=(--git-dir="$W/fi.git" --work-tree="$W/gen/tree")
	git "${gd[@]}" read-tree main
	git "${gd[@]}" update-index --refresh >/dev/null
	git "${gd[@]}" status --porcelain >/dev/null
	best=
	for _ in 1 2 3 4 5; do
		t0=$(now); git "${gd[@]}" status --porcelain >/dev/null; t1=$(now)
		s=$(secs "$t0" "$t1"); if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$s; fi
	done
	git_status=$best
	line=$(ours BenchmarkRescanUnchanged 1x)
	our_rescan=$(awk -v v="$(metric best-ns <<<"$line")" 'BEGIN{printf "%.4f", v/1e9}')
	results+=("rescan|rescan $N unchanged files in $D folder(s)|\`go test -bench '^BenchmarkRescanUnchanged\$' -benchtime 1x\` (best of 5) vs \`git status --porcelain\` (best of 5, index refreshed)|${our_rescan}s|${git_status}s|$(ratio "$our_rescan" "$git_status")|≤ 1.5")
fi

if has bundle; then
	prev=$(git --git-dir="$W/fi.git" rev-parse main)
	git --git-dir="$W/fi.git" fast-import --quiet <"$W/gen/one.stream"
	best=
	for _ in 1 2 3 4 5; do
		rm -f "$W/one.bundle"
		t0=$(now); git --git-dir="$W/fi.git" bundle create "$W/one.bundle" main "^$prev" 2>/dev/null; t1=$(now)
		s=$(secs "$t0" "$t1"); if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$s; fi
	done
	git_bundle=$best
	line=$(ours BenchmarkBundleOneCommit 1x)
	our_bundle=$(awk -v v="$(metric best-ns <<<"$line")" 'BEGIN{printf "%.4f", v/1e9}')
	results+=("bundle|1-commit incremental bundle in a $N-commit repo|\`go test -bench '^BenchmarkBundleOneCommit\$' -benchtime 1x\` (best of 5) vs \`git bundle create f main ^prev\` (best of 5)|${our_bundle}s|${git_bundle}s|$(ratio "$our_bundle" "$git_bundle")|≤ 1.0")
fi

if has large; then
	L=${PEERSYNC_BENCH_LARGE_MIB:-1024}
	export PEERSYNC_BENCH_LARGE_MIB=$L
	line=$(ours BenchmarkLargeFileRSS 1x)
	our_time=$(nsop <<<"$line")
	our_peak=$(awk -v a="$(metric scan-peak-MiB <<<"$line")" -v b="$(metric bundle-peak-MiB <<<"$line")" -v c="$(metric apply-peak-MiB <<<"$line")" 'BEGIN{m=a; if (b>m) m=b; if (c>m) m=c; printf "%.0f", m}')
	# git: add + commit, bundle create, fetch the bundle into a new repository.
	rss() { /usr/bin/time -f %M -o "$W/rss" "$@" >/dev/null 2>&1; echo $(( $(cat "$W/rss") / 1024 )); }
	mkdir -p "$W/large"
	git init -q -b main "$W/large/src"
	head -c $((L << 20)) /dev/urandom >"$W/large/src/large.bin"
	t0=$(now)
	r1=$(cd "$W/large/src" && rss git add large.bin)
	r2=$(cd "$W/large/src" && rss git -c user.name=b -c user.email=b@x commit -q -m large)
	r3=$(cd "$W/large/src" && rss git bundle create -q "$W/large/l.bundle" main)
	git init -q --bare "$W/large/dst.git"
	r4=$(rss git --git-dir="$W/large/dst.git" fetch -q "$W/large/l.bundle" main:main)
	t1=$(now)
	git_peak=$(printf '%s\n' "$r1" "$r2" "$r3" "$r4" | sort -n | tail -1)
	results+=("large|commit + bundle + apply of one $L MiB file (random bytes)|\`go test -bench '^BenchmarkLargeFileRSS\$' -benchtime 1x\` (peak RSS per step, VmHWM) vs \`git add\`+\`commit\`+\`bundle create\`+\`fetch\` (/usr/bin/time %M)|peak ${our_peak} MiB (scan $(metric scan-peak-MiB <<<"$line"), bundle $(metric bundle-peak-MiB <<<"$line"), apply $(metric apply-peak-MiB <<<"$line")); ${our_time}s|peak ${git_peak} MiB (add $r1, commit $r2, bundle $r3, fetch $r4); $(secs "$t0" "$t1")s|RSS $(ratio "$our_peak" "$git_peak"), time $(ratio "$our_time" "$(secs "$t0" "$t1")")|peak RSS < 150 MiB")
fi

if has apply; then
	line=$( (cd "$ROOT/gitstore" && PEERSYNC_BENCH_BUNDLE_OUT="$W/full.bundle" "$W/gitstore.test" -test.run '^$' -test.bench '^BenchmarkApplyBundleMemory$' -test.benchtime 1x) |
		awk '$1 ~ "^BenchmarkApplyBundleMemory" {print}')
	our_heap=$(metric heap-peak-MiB <<<"$line")
	our_rss=$(metric apply-peak-MiB <<<"$line")
	our_time=$(metric apply-s <<<"$line")
	# git: clone the same bundle (index-pack + checkout of the N files).
	t0=$(now)
	/usr/bin/time -f %M -o "$W/rss" git clone -q -b main "$W/full.bundle" "$W/clone" >/dev/null 2>&1
	t1=$(now)
	git_rss=$(( $(cat "$W/rss") / 1024 ))
	git_time=$(secs "$t0" "$t1")
	results+=("apply|apply the bundle of a whole $N-commit history ($N files in $D folder(s)) to an empty store|\`go test -bench '^BenchmarkApplyBundleMemory\$' -benchtime 1x\` (HeapInuse sampled every 20 ms; VmHWM of the apply) vs \`git clone\` of the same bundle (/usr/bin/time %M)|heap peak ${our_heap} MiB, RSS peak ${our_rss} MiB; ${our_time}s|RSS peak ${git_rss} MiB; ${git_time}s|RSS $(ratio "$our_rss" "$git_rss"), time $(ratio "$our_time" "$git_time")|peak < 150 MiB")
fi

if has full; then
	runs=${PEERSYNC_BENCH_FULL_RUNS:-1}
	line=$( (cd "$ROOT/gitstore" && "$W/gitstore.test" -test.run '^$' -test.bench '^BenchmarkBundleExportFull$' -test.benchtime "${runs}x") |
		awk '$1 ~ "^BenchmarkBundleExportFull" {print}')
	our_s=$(metric ours-s <<<"$line")
	git_s=$(metric git-s <<<"$line")
	our_cpu=$(metric ours-cpu-s <<<"$line")
	git_cpu=$(metric git-cpu-s <<<"$line")
	results+=("full|full bundle of a whole $N-commit history ($N files in $D folder(s)), mean of $runs|\`go test -bench '^BenchmarkBundleExportFull\$' -benchtime ${runs}x\` vs \`git bundle create f main\` on the same .peersync, same iteration|${our_s}s (CPU ${our_cpu}s), first byte at $(metric first-byte-s <<<"$line")s, $(metric bundle-bytes <<<"$line") B, peak RSS $(metric peak-MiB <<<"$line") MiB, heap $(metric heap-peak-MiB <<<"$line") MiB|${git_s}s (CPU ${git_cpu}s), $(metric git-bundle-bytes <<<"$line") B|time $(ratio "$our_s" "$git_s"), CPU $(ratio "$our_cpu" "$git_cpu")|≤ 1.5")
fi

date_utc=$(date -u +%Y-%m-%dT%H:%MZ)
machine="$(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(go version | cut -d' ' -f3), $(git --version)"
rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$ROOT" && git status --porcelain -- gitstore | grep -q . && echo "+uncommitted" || true)
out="
## Run $date_utc: $ONLY, $N files in $D folder(s)

\`BENCH_ONLY='$ONLY' PEERSYNC_BENCH_FILES=$N PEERSYNC_BENCH_DIRS=$D${PEERSYNC_BENCH_LARGE_MIB:+ PEERSYNC_BENCH_LARGE_MIB=$PEERSYNC_BENCH_LARGE_MIB} scripts/bench-gitstore.sh\` at $rev$dirty; machine: $machine.
${need_data:+Folder: $folder_bytes B.
}
| benchmark | what | command | ours | git | ratio ours/git | target |
| --- | --- | --- | --- | --- | --- | --- |"
for r in "${results[@]}"; do out+="
| ${r//|/ | } |"; done
echo "$out"
if [ -z "${BENCH_NO_APPEND:-}" ]; then
	[ -f "$ROOT/BENCHMARKS.md" ] || printf '# Benchmarks\n' >"$ROOT/BENCHMARKS.md"
	echo "$out" >>"$ROOT/BENCHMARKS.md"
fi
