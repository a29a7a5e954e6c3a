#!/usr/bin/env python3
"""Big first syncs between two daemons (issue 15, issue 12 target 2), same run references.

Two `desktop run` processes on 127.0.0.1 (no discovery, no UI), A holding FILES random files of
1-4 KiB spread over DIRS folders (DIRS=1: one flat folder), B empty. Timed from launch until B's
main equals A's and B's tree matches A's (file count and bytes; then every file's SHA-256 is
compared before anything is reported). Peak RSS of each daemon is its VmHWM at the end.

Same-run references:
  git   `git bundle create` of A's resulting history + `git fetch` of that bundle into an empty
        repository + `git checkout -f main` (what issue 15 calls git's floor for this history);
  cp    `cp -r` of the data + `sync`;
  syncthing (with --syncthing) the same two-process race with Syncthing (Debian's package).

Usage: scripts/bench-bigsync.py [--files 100000] [--dirs 20] [--syncthing] [--profile DIR]
       [--limit 3600] [--keep DIR] [--binary PATH] [--peak-log FILE] [--no-refs]
--profile DIR writes the daemons' CPU profiles (PEERSYNC_CPUPROFILE, 30 s windows) to DIR/a.* and
DIR/b.*; read them with `go tool pprof -top DIR/desktop DIR/a.*`. The desktop probe also writes DIR/a.heappeak
(a heap profile at the largest heap seen, with DIR/a.heappeak.txt).
--binary PATH runs that desktop binary instead of building this tree's (to compare two builds).
--no-refs skips the git and cp references (for a same-run comparison of two builds).
--peak-log FILE appends, every second, each daemon's VmRSS with the time since launch (for when
the peak happens).
Prints a Markdown table row per measurement; load averages are printed beside them.
"""
import argparse, importlib.util, os, random, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("cmpst", os.path.join(ROOT, "scripts", "compare-syncthing.py"))
cmpst = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cmpst)  # free_port, summary, digest, stop, st_configure
GITENV = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")


def make_data(dst, files, dirs, seed=1):
    rnd = random.Random(seed)
    for i in range(files):
        d = os.path.join(dst, f"dir{i % dirs:04d}") if dirs > 1 else dst
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i:06d}.txt"), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(1024, 4096)))


def load():
    return open("/proc/loadavg").read().split()[0]


def head(folder):
    try:
        with open(os.path.join(folder, ".peersync", "refs", "heads", "main")) as f:
            return f.read().strip()
    except OSError:
        return ""


def vm(pid, key):
    """VmHWM/VmRSS of pid in MiB (0 when gone)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


def wait_peersync(fa, fb, procs, limit, peak_log=""):
    """Seconds until B's main equals A's and B's tree matches A's. Polls the two ref files
    (cheap); walks the trees only when the heads agree (a walk of 100k files costs CPU the
    daemons need)."""
    t0 = time.monotonic()
    seen = ""
    logged = -1
    while time.monotonic() - t0 < limit:
        now = time.monotonic() - t0
        if peak_log and int(now) != logged:
            logged = int(now)
            with open(peak_log, "a") as f:
                f.write(f"{now:.0f} s: VmRSS A {vm(procs[0].pid, 'VmRSS'):.0f} B {vm(procs[1].pid, 'VmRSS'):.0f} MiB\n")
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"a daemon exited with {p.returncode}")
        ha, hb = head(fa), head(fb)
        if ha and ha == hb and hb != seen:
            # B's main moves only after its checkout: the trees are in step
            # now if the walks (which take a while) confirm it.
            seen, at = hb, time.monotonic() - t0
            if cmpst.summary(fb) == cmpst.summary(fa):
                return at
        time.sleep(0.25)  # polling period of two small files
    raise SystemExit(f"timeout after {limit} s: {fb} never matched {fa}")


def run_peersync(work, data, limit, profile, prebuilt="", peak_log=""):
    binary = os.path.join(work, "desktop")
    if prebuilt:
        shutil.copy(prebuilt, binary)
    else:
        subprocess.run(["go", "build", "-o", binary, "./examples/desktop"], cwd=ROOT, check=True)
    if profile:
        shutil.copy(binary, os.path.join(profile, "desktop"))
    homes = [os.path.join(work, "ps-home-a"), os.path.join(work, "ps-home-b")]
    fa, fb = os.path.join(work, "ps-a"), os.path.join(work, "ps-b")
    subprocess.run(["cp", "-r", data, fa], check=True)
    os.makedirs(fb)
    ports = [cmpst.free_port(), cmpst.free_port()]
    cli = lambda h, *a: subprocess.run([binary, "--home", h, *a], check=True, capture_output=True, text=True).stdout.strip()
    ids = [cli(homes[0], "init", "--name", "a"), cli(homes[1], "init", "--name", "b")]
    cli(homes[0], "folder", "add", "--id", "big", fa)
    cli(homes[1], "folder", "add", "--id", "big", fb)
    cli(homes[0], "peer", "add", "--name", "b", "--addr", f"127.0.0.1:{ports[1]}", "--folders", "big", ids[1])
    cli(homes[1], "peer", "add", "--name", "a", "--addr", f"127.0.0.1:{ports[0]}", "--folders", "big", ids[0])
    log = open(os.path.join(work, "peersync.log"), "w")
    procs = []
    subprocess.run(["sync"], check=True)
    t0 = time.monotonic()
    for name, h, p in zip("ab", homes, ports):
        env = dict(os.environ)
        if profile:
            env["PEERSYNC_CPUPROFILE"] = os.path.join(profile, name)
        procs.append(subprocess.Popen([binary, "--home", h, "run", "--listen", f"127.0.0.1:{p}", "--ui", "none",
                                       "--no-discovery", "--default-folder", "none"], stdout=log, stderr=log, env=env))
    try:
        secs = wait_peersync(fa, fb, procs, limit, peak_log)
        rss = [vm(p.pid, "VmHWM") for p in procs]
    finally:
        cmpst.stop(procs)
    assert cmpst.digest(fa) == cmpst.digest(fb), "peersync: content differs"
    return secs, rss, fa


def run_git(work, fa):
    """git bundle create + git fetch + git checkout of A's history; seconds of each."""
    bundle, repo = os.path.join(work, "ref.bundle"), os.path.join(work, "git-ref")
    subprocess.run(["sync"], check=True)
    t = [time.monotonic()]
    subprocess.run(["git", "--git-dir", os.path.join(fa, ".peersync"), "bundle", "create", bundle, "main"],
                   check=True, capture_output=True, env=GITENV)
    t.append(time.monotonic())
    subprocess.run(["git", "init", "-q", repo], check=True, env=GITENV)
    subprocess.run(["git", "-C", repo, "fetch", "-q", bundle, "main:main"], check=True, capture_output=True, env=GITENV)
    t.append(time.monotonic())
    subprocess.run(["git", "-C", repo, "checkout", "-q", "-f", "main"], check=True, env=GITENV)
    subprocess.run(["sync"], check=True)
    t.append(time.monotonic())
    return [b - a for a, b in zip(t, t[1:])]


def run_cp(work, data):
    dst = os.path.join(work, "cp")
    subprocess.run(["sync"], check=True)
    t0 = time.monotonic()
    subprocess.run(["cp", "-r", data, dst], check=True)
    subprocess.run(["sync"], check=True)
    return time.monotonic() - t0


def run_syncthing(work, data, limit):
    homes = [os.path.join(work, "st-home-a"), os.path.join(work, "st-home-b")]
    fa, fb = os.path.join(work, "st-a"), os.path.join(work, "st-b")
    subprocess.run(["cp", "-r", data, fa], check=True)
    os.makedirs(fb)
    for f in (fa, fb):
        os.makedirs(os.path.join(f, ".stfolder"))
    ids = []
    for h in homes:
        subprocess.run(["syncthing", "generate", f"--home={h}", "--no-default-folder"], check=True, capture_output=True)
        ids.append(subprocess.run(["syncthing", "serve", f"--home={h}", "--device-id"], check=True,
                                  capture_output=True, text=True).stdout.strip())
    ports = [cmpst.free_port(socket.SOCK_STREAM), cmpst.free_port(socket.SOCK_STREAM)]
    guis = [cmpst.free_port(socket.SOCK_STREAM), cmpst.free_port(socket.SOCK_STREAM)]
    cmpst.st_configure(homes[0], fa, ports[0], guis[0], ids[1], ports[1], ids[0])
    cmpst.st_configure(homes[1], fb, ports[1], guis[1], ids[0], ports[0], ids[1])
    env = dict(os.environ, STNOUPGRADE="1", STNODEFAULTFOLDER="1")
    log = open(os.path.join(work, "syncthing.log"), "w")
    want = cmpst.summary(fa)
    subprocess.run(["sync"], check=True)
    t0 = time.monotonic()
    procs = [subprocess.Popen(["syncthing", "serve", f"--home={h}", "--no-browser", "--no-restart"],
                              stdout=log, stderr=log, env=env) for h in homes]
    try:
        while cmpst.summary(fb) != want:
            if time.monotonic() - t0 > limit:
                raise SystemExit("syncthing: timeout")
            time.sleep(1)  # polling period: a walk of the whole tree each time
        secs = time.monotonic() - t0
        rss = [vm(p.pid, "VmHWM") for p in procs]
    finally:
        cmpst.stop(procs)
    assert cmpst.digest(fa) == cmpst.digest(fb), "syncthing: content differs"
    return secs, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--dirs", type=int, default=20)
    ap.add_argument("--syncthing", action="store_true")
    ap.add_argument("--profile", default="")
    ap.add_argument("--limit", type=int, default=3600)
    ap.add_argument("--keep", default="", help="work directory to use and keep (default: a temporary one, removed)")
    ap.add_argument("--binary", default="", help="desktop binary to run (default: build this tree's)")
    ap.add_argument("--peak-log", default="", help="append each daemon's VmRSS every second to this file")
    ap.add_argument("--no-refs", action="store_true", help="skip the git and cp references")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="bench-bigsync-")
    os.makedirs(work, exist_ok=True)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    shape = f"{args.files} files of 1-4 KiB in " + (f"{args.dirs} folders" if args.dirs > 1 else "one flat folder")
    try:
        data = os.path.join(work, "data")
        make_data(data, args.files, args.dirs)
        l0 = load()
        ps, rss, fa = run_peersync(work, data, args.limit, args.profile, args.binary, args.peak_log)
        l1 = load()
        g = run_git(work, fa) if not args.no_refs else [0, 0, 0]
        cp = run_cp(work, data) if not args.no_refs else 0
        l2 = load()
        st = run_syncthing(work, data, args.limit) if args.syncthing else None
        l3 = load()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    gt = sum(g)
    print(f"data: {shape}; {os.cpu_count()} cores; load average at start/after peersync/after refs: {l0}/{l1}/{l2}")
    print("| what | time | peak RSS A / B | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| peersync daemons, launch → identical trees | {ps:.1f} s | {rss[0]:.0f} / {rss[1]:.0f} MiB | — |")
    if args.no_refs:
        return
    print(f"| git bundle create + fetch + checkout | {g[0]:.1f} + {g[1]:.1f} + {g[2]:.1f} = {gt:.1f} s | — | peersync/git {ps / gt:.2f} |")
    print(f"| cp -r + sync | {cp:.1f} s | — | peersync/cp {ps / cp:.2f} |")
    if st:
        print(f"| Syncthing (load after: {l3}) | {st[0]:.1f} s | {st[1][0]:.0f} / {st[1][1]:.0f} MiB | peersync/Syncthing {ps / st[0]:.2f} |")


if __name__ == "__main__":
    main()
