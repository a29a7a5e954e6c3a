#!/usr/bin/env python3
"""Soak: 3 desktop daemons on loopback, a steady stream of edits for N minutes.

Every --interval seconds it samples each daemon's RSS and thread count (from
/proc/PID/status) and its goroutine count and Go heap in use (from the file
the daemon rewrites every second when PEERSYNC_DEBUG_STATS names one, see
examples/desktop/debugstats.go) into a CSV, and prints a summary (first,
last, max per daemon and column). At the end it stops the edits, waits for
the three folders to converge (bounded), checks them, and stops the daemons
with SIGINT.

Usage: scripts/soak.py [--minutes 30] [--interval 10] [--rate 2] [--csv FILE]
The CSV goes to docs/soak/soak-<UTC time>.csv unless --csv says otherwise;
the summary is printed and written beside it as .txt.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 a moment ago."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise SystemExit("no free port found in 100 tries")


def cli(bin_, home, *args):
    out = subprocess.run([bin_, "--home", home, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"desktop --home {home} {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def proc_status(pid):
    """VmRSS (KiB) and Threads of pid, from /proc."""
    rss = threads = -1
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def debug_stats(path):
    """goroutines and heap_inuse from the daemon's PEERSYNC_DEBUG_STATS file."""
    try:
        with open(path) as f:
            kv = dict(p.split("=", 1) for p in f.read().split())
        return int(kv["goroutines"]), int(kv["heap_inuse"])
    except (OSError, KeyError, ValueError):
        return -1, -1


def du_kib(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total // 1024


def snapshot(folder, hash_=True):
    """Maps each file below folder (skipping .peersync) to its SHA-256."""
    out = {}
    for dirpath, dirs, files in os.walk(folder):
        if ".peersync" in dirs:
            dirs.remove(".peersync")
        dirs[:] = [d for d in dirs if not d.startswith(".peersync-tmp-")]
        for name in files:
            if name.startswith(".peersync-tmp-"):  # our temporary files: never synced
                continue
            p = os.path.join(dirpath, name)
            if not hash_:
                out[os.path.relpath(p, folder)] = ""
                continue
            try:
                with open(p, "rb") as f:
                    out[os.path.relpath(p, folder)] = hashlib.sha256(f.read()).hexdigest()
            except FileNotFoundError:  # deleted or renamed by a checkout meanwhile
                pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--interval", type=float, default=10, help="seconds between samples")
    ap.add_argument("--rate", type=float, default=2, help="edits per second, over all daemons")
    ap.add_argument("--files", type=int, default=300, help="size of the pool of file names")
    ap.add_argument("--csv", help="output CSV (default docs/soak/soak-<time>.csv)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    csv_path = a.csv or os.path.join(ROOT, "docs", "soak", f"soak-{stamp}.csv")
    os.makedirs(os.path.dirname(csv_path), exist_ok=True)

    work = tempfile.mkdtemp(prefix="peersync-soak-")
    bin_ = os.path.join(work, "desktop")
    subprocess.run(["go", "build", "-o", bin_, "./examples/desktop"], cwd=ROOT, check=True)

    names = ["alpha", "beta", "gamma"]
    devs = []
    for n in names:
        home, folder = os.path.join(work, n, "home"), os.path.join(work, n, "folder")
        os.makedirs(folder)
        dev_id = cli(bin_, home, "init", "--name", n).strip()
        cli(bin_, home, "folder", "add", "--id", "docs", folder)
        devs.append({"name": n, "home": home, "folder": folder, "id": dev_id, "port": free_port(),
                     "stats": os.path.join(work, n, "stats")})
    for d in devs:  # full mesh, each with the others' addresses
        for o in devs:
            if o is not d:
                cli(bin_, d["home"], "peer", "add", "--name", o["name"], "--addr", f"127.0.0.1:{o['port']}",
                    "--folders", "docs", o["id"])
    procs = []
    for d in devs:
        env = dict(os.environ, PEERSYNC_DEBUG_STATS=d["stats"])
        log = open(os.path.join(work, d["name"] + ".log"), "w")
        p = subprocess.Popen([bin_, "--home", d["home"], "run", "--listen", f"127.0.0.1:{d['port']}",
                              "--ui", "none", "--no-discovery"], stdout=log, stderr=log, env=env)
        procs.append(p)
        d["pid"] = p.pid

    # Ready: each daemon has written its stats and its runtime.json.
    deadline = time.monotonic() + 60
    while not all(os.path.exists(d["stats"]) and os.path.exists(os.path.join(d["home"], "runtime.json")) for d in devs):
        for d, p in zip(devs, procs):
            if p.poll() is not None:
                raise SystemExit(f"{d['name']} exited with {p.returncode} at start; log in {work}")
        if time.monotonic() > deadline:
            raise SystemExit(f"daemons not ready within 60 s; logs in {work}")
        time.sleep(0.1)  # polling for files the daemons write: no other signal across processes

    cols = ["t_s", "daemon", "rss_kib", "threads", "goroutines", "heap_inuse_kib", "peersync_kib", "files"]
    rows = []
    edits = 0
    start = time.monotonic()
    end = start + a.minutes * 60
    next_sample = start + a.interval  # the first sample after warm-up, not at launch
    next_edit = start
    try:
        with open(csv_path, "w") as out:
            out.write(",".join(cols) + "\n")
            while True:
                now = time.monotonic()
                if now >= next_sample:
                    for d, p in zip(devs, procs):
                        if p.poll() is not None:
                            raise SystemExit(f"{d['name']} exited with {p.returncode}; log in {work}")
                        rss, threads = proc_status(p.pid)
                        gor, heap = debug_stats(d["stats"])
                        nfiles = len(snapshot(d["folder"], hash_=False))
                        row = [round(now - start), d["name"], rss, threads, gor, heap // 1024 if heap >= 0 else -1,
                               du_kib(os.path.join(d["folder"], ".peersync")), nfiles]
                        rows.append(row)
                        out.write(",".join(map(str, row)) + "\n")
                    out.flush()
                    next_sample += a.interval
                if now >= end:
                    break
                if now >= next_edit:
                    d = rnd.choice(devs)
                    p = os.path.join(d["folder"], f"dir{rnd.randrange(10)}", f"f{rnd.randrange(a.files)}.txt")
                    if os.path.exists(p) and rnd.random() < 0.2:
                        os.remove(p)
                    else:
                        os.makedirs(os.path.dirname(p), exist_ok=True)
                        with open(p, "wb") as f:
                            f.write(os.urandom(rnd.randint(100, 8192)))
                    edits += 1
                    next_edit += 1.0 / a.rate
                time.sleep(max(0.0, min(next_edit, next_sample, end) - time.monotonic()))

        # Quiet: wait for the three folders to agree. Within 120 s is the
        # verdict; past it we keep watching up to 10 minutes, to tell a slow
        # convergence from none.
        deadline, give_up = time.monotonic() + 120, time.monotonic() + 600
        late = False
        while True:
            snaps = [snapshot(d["folder"]) for d in devs]
            if snaps[0] == snaps[1] == snaps[2]:
                converged = f"converged {time.monotonic() - end:.1f} s after the last edit ({len(snaps[0])} files)"
                if late:
                    converged = "NOT converged within 120 s: " + converged + f"; work dir kept in {work}"
                break
            if time.monotonic() > deadline and not late:
                late = True
                print(f"not converged 120 s after the last edit; watching up to 10 min (work dir {work})", flush=True)
            if time.monotonic() > give_up:
                converged = "NOT converged 600 s after the last edit"
                why = []
                for d, snap in zip(devs, snaps):
                    head = subprocess.run(["git", "--git-dir=" + os.path.join(d["folder"], ".peersync"), "rev-parse",
                                           "refs/heads/main"], capture_output=True, text=True).stdout.strip()
                    why.append(f"{d['name']}: {len(snap)} files, head {head}")
                for d, snap in zip(devs[1:], snaps[1:]):
                    diff = sorted(k for k in set(snaps[0]) | set(snap) if snaps[0].get(k) != snap.get(k))
                    why.append(f"{devs[0]['name']} vs {d['name']}: {len(diff)} paths differ, e.g. {diff[:5]}")
                converged += " (" + "; ".join(why) + f"; work dir and logs kept in {work})"
                break
            time.sleep(0.5)  # polling the trees: there is no "in sync" signal across three processes
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    lines = [f"soak: 3 daemons, {a.minutes:g} min, {edits} edits at {a.rate:g}/s over {a.files} names, "
             f"sample every {a.interval:g} s; {converged}; exits {[p.returncode for p in procs]}",
             f"csv: {os.path.relpath(csv_path, ROOT)}",
             f"{'daemon':8} {'column':15} {'first':>10} {'last':>10} {'max':>10} {'min':>10}"]
    for d in devs:
        mine = [r for r in rows if r[1] == d["name"]]
        for ci, c in enumerate(cols):
            if ci < 2:
                continue
            vals = [r[ci] for r in mine]
            lines.append(f"{d['name']:8} {c:15} {vals[0]:>10} {vals[-1]:>10} {max(vals):>10} {min(vals):>10}")
    summary = "\n".join(lines)
    print(summary)
    with open(os.path.splitext(csv_path)[0] + ".txt", "w") as f:
        f.write(summary + "\n")
    if "NOT" in converged:
        sys.exit(1)  # keep the work dir for a look
    shutil.rmtree(work, ignore_errors=True)
    if "NOT" in converged or any(p.returncode != 0 for p in procs):
        sys.exit(1)


if __name__ == "__main__":
    main()
