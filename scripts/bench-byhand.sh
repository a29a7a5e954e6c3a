#!/usr/bin/env bash
# bench-byhand.sh DESKTOP_BINARY: issue 15's "by hand" rows on 100,000 random files of 1-4 KiB in 20
# folders: `desktop scan`, `bundle export`, `bundle import` into an empty folder, against `git bundle
# create` + `git fetch` + `git checkout` of the same history; peak RSS from /usr/bin/time; the trees are
# compared with diff -rq at the end.
set -uo pipefail
BIN=${1:?desktop binary}; W=$(mktemp -d /tmp/byhand.XXXX)
python3 - "$W/data" <<'PY'
import os, random, sys
dst=sys.argv[1]; rnd=random.Random(1)
for i in range(100000):
    d=os.path.join(dst, f"dir{i%20:04d}"); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"file{i:06d}.txt"),"wb").write(rnd.randbytes(rnd.randint(1024,4096)))
PY
t() { /usr/bin/time -f "%e s, peak RSS %M KiB" "$@"; }
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
$BIN --home "$W/ha" init --name a >/dev/null && $BIN --home "$W/ha" folder add --id big "$W/data" >/dev/null
echo -n "scan: "; t $BIN --home "$W/ha" scan --folder big 2>&1 >/dev/null | tail -1
echo -n "bundle export: "; t $BIN --home "$W/ha" bundle export --folder big "$W/b.bundle" 2>&1 >/dev/null | tail -1
ls -l "$W/b.bundle" | awk '{print "bundle bytes", $5}'
echo -n "git bundle create: "; (cd "$W/data/.peersync" && t git bundle create -q "$W/g.bundle" main 2>&1 | tail -1)
mkdir "$W/recv"; $BIN --home "$W/hb" init --name b >/dev/null && $BIN --home "$W/hb" folder add --id big "$W/recv" >/dev/null
echo -n "bundle import: "; t $BIN --home "$W/hb" bundle import --folder big "$W/b.bundle" 2>&1 >/dev/null | tail -1
mkdir "$W/g"; cd "$W/g" && git init -q && echo -n "git fetch: " && t git fetch -q "$W/g.bundle" main:main 2>&1 | tail -1; echo -n "git checkout: "; t git checkout -q -f main 2>&1 | tail -1
n=$(find "$W/recv" -path '*/.peersync' -prune -o -type f -print | wc -l); echo "files received: $n"
diff -rq -x .peersync "$W/data" "$W/recv" && echo "trees identical"
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$W"
