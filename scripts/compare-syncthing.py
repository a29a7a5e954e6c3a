#!/usr/bin/env python3
"""First sync and edit latency: peersync against Syncthing and a plain copy, same data, same run.

Targets (issue 12, docs/design.md section 9): first sync of two peers on loopback, from
launch to identical trees, at most 0.5x Syncthing and at most 2.0x `cp -r` + `sync` of the
same data (what the disk allows; a git design writes the data twice, pack and checkout);
an edit on A visible on B in < 0.2 s (median).

Both tools run as real processes on 127.0.0.1 with everything that could leave the
machine switched off (Syncthing: global/local announce, relays, NAT, usage and crash
reporting, upgrades; peersync: --no-discovery). Data: FILES small random files
(1-4 KiB) in 20 folders plus one BIG_MIB MiB random file. Every row is checked byte for
byte (SHA-256 of every file on both sides) before its time is reported. Each daemon's
peak RSS (VmHWM) and CPU time (user + system) are read from /proc just before it is
stopped; CPU time varies much less with the machine's load than the wall time does.

Rows, each in every round, in alternating order so that load drifts hit both sides:
  cp         `cp -r DATA DST && sync`
  peersync   two `desktop run` daemons (or, with --peers N, one sender and N receivers,
             from launch until every receiver is identical; with --peers N the 1-peer row
             runs too, so the fan-out ratio has its same-run reference)
  syncthing  two `syncthing serve` processes
  ref        --ref-binary: another build of examples/desktop (e.g. main's), same as peersync

Usage: scripts/compare-syncthing.py [--files 2000] [--big-mib 256] [--edits 5]
           [--rounds 1] [--rows cp,peersync,syncthing] [--peers 1] [--ref-binary PATH]
           [--keep-logs DIR]
Needs: go, syncthing (Debian package) for its row. Prints Markdown tables.
"""
import argparse, hashlib, os, random, shutil, socket, statistics, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = {".peersync", ".stfolder", ".stversions"}


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_data(dst, files, big_mib, seed=1):
    rnd = random.Random(seed)
    os.makedirs(dst, exist_ok=True)
    for i in range(files):
        d = os.path.join(dst, f"dir{i % 20:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i:05d}.txt"), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(1024, 4096)))
    if big_mib:
        with open(os.path.join(dst, "big.bin"), "wb") as f:
            for _ in range(big_mib):
                f.write(os.urandom(1 << 20))


def summary(root):
    """(file count, total bytes) below root, skipping the tools' own dirs."""
    n = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP]
        for fn in filenames:
            if fn.startswith((".syncthing.", ".peersync-tmp-", "~syncthing~")):
                continue
            n += 1
            try:
                size += os.path.getsize(os.path.join(dirpath, fn))
            except OSError:
                pass
    return n, size


def digest(root):
    """SHA-256 of every file below root (streamed: the big file may be 4 GiB)."""
    h = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP]
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            s = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    s.update(chunk)
            h[os.path.relpath(p, root)] = s.hexdigest()
    return h


def wait_same(src, dsts, limit):
    want = summary(src)
    t0 = time.monotonic()
    left = list(dsts)
    while time.monotonic() - t0 < limit:
        left = [d for d in left if summary(d) != want]
        if not left:
            return
        time.sleep(0.05)  # polling the other tool's output tree is all there is
    raise SystemExit(f"timeout: {left} never matched {src}")


def check_same(src, dsts, label):
    want = digest(src)
    for d in dsts:
        if digest(d) != want:
            raise SystemExit(f"{label}: content of {d} differs from {src}")


def edit_latency(src, dst, edits, label):
    lat = []
    for i in range(edits):
        content = f"{label} edit {i} {time.time()}\n".encode()
        t0 = time.monotonic()
        with open(os.path.join(src, "dir00", "edited.txt"), "wb") as f:
            f.write(content)
        target = os.path.join(dst, "dir00", "edited.txt")
        while True:
            try:
                with open(target, "rb") as f:
                    if f.read() == content:
                        break
            except OSError:
                pass
            if time.monotonic() - t0 > 120:
                raise SystemExit(f"{label}: edit {i} never arrived")
            time.sleep(0.005)
        lat.append(time.monotonic() - t0)
        time.sleep(0.3)
    lat.sort()
    return lat[len(lat) // 2] if lat else float("nan")


def peak_rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_s(pid):
    """User + system CPU seconds of pid so far (varies much less with load than wall time)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def run_cp(work, data, tag):
    dst = os.path.join(work, f"cp-{tag}")
    t0 = time.monotonic()
    subprocess.run(["cp", "-r", data, dst], check=True)
    subprocess.run(["sync"], check=True)
    took = time.monotonic() - t0
    check_same(data, [dst], "cp")
    shutil.rmtree(dst)
    return {"time": took}


PROFILE = ""  # --profile: where the daemons write their CPU profiles


def run_peersync(work, data, edits, binary, peers, tag, limit):
    """One sender, `peers` receivers, all sharing folder "bench" with the sender only."""
    names = ["a"] + [f"r{i}" for i in range(peers)]
    homes = [os.path.join(work, f"ps-{tag}-home-{n}") for n in names]
    dirs = [os.path.join(work, f"ps-{tag}-{n}") for n in names]
    shutil.copytree(data, dirs[0])
    for d in dirs[1:]:
        os.makedirs(d)
    ports = [free_port() for _ in names]
    cli = lambda h, *a: subprocess.run([binary, "--home", h, *a], check=True, capture_output=True, text=True).stdout.strip()
    ids = [cli(h, "init", "--name", n) for h, n in zip(homes, names)]
    for h, d in zip(homes, dirs):
        cli(h, "folder", "add", "--id", "bench", d)
    for i in range(1, len(names)):
        cli(homes[0], "peer", "add", "--name", names[i], "--addr", f"127.0.0.1:{ports[i]}", "--folders", "bench", ids[i])
        cli(homes[i], "peer", "add", "--name", "a", "--addr", f"127.0.0.1:{ports[0]}", "--folders", "bench", ids[0])
    log = open(os.path.join(work, f"peersync-{tag}.log"), "w")
    t0 = time.monotonic()
    def env_for(name):
        if not PROFILE:
            return None  # inherit
        return dict(os.environ, PEERSYNC_CPUPROFILE=os.path.join(PROFILE, f"{tag}-{name}"))
    procs = [subprocess.Popen([binary, "--home", h, "run", "--listen", f"127.0.0.1:{p}", "--ui", "none",
                               "--no-discovery", "--default-folder", "none"], stdout=log, stderr=log,
                              env=env_for(n))
             for h, p, n in zip(homes, ports, names)]
    try:
        wait_same(dirs[0], dirs[1:], limit)
        took = time.monotonic() - t0
        rss = [peak_rss_mib(p.pid) for p in procs]
        cpu = [cpu_s(p.pid) for p in procs]
        check_same(dirs[0], dirs[1:], "peersync")
        median = edit_latency(dirs[0], dirs[1], edits, "peersync")
    finally:
        stop(procs)
        log.close()
    for d in dirs + homes:
        shutil.rmtree(d, ignore_errors=True)
    return {"time": took, "edit": median, "rss_send": rss[0], "rss_recv": max(rss[1:]),
            "cpu_send": cpu[0], "cpu_recv": max(cpu[1:])}


def st_configure(home, folder, self_port, gui_port, other_id, other_port, self_id):
    path = os.path.join(home, "config.xml")
    tree = ET.parse(path)
    root = tree.getroot()
    opts = root.find("options")
    settings = {"listenAddress": f"tcp://127.0.0.1:{self_port}", "globalAnnounceEnabled": "false",
                "localAnnounceEnabled": "false", "relaysEnabled": "false", "natEnabled": "false",
                "urAccepted": "-1", "autoUpgradeIntervalH": "0", "startBrowser": "false",
                "crashReportingEnabled": "false"}
    for k, v in settings.items():
        for el in opts.findall(k):
            opts.remove(el)
        ET.SubElement(opts, k).text = v
    root.find("gui").find("address").text = f"127.0.0.1:{gui_port}"
    dev = ET.SubElement(root, "device", id=other_id, name="other", compression="metadata", introducer="false")
    ET.SubElement(dev, "address").text = f"tcp://127.0.0.1:{other_port}"
    f = ET.Element("folder", id="bench", label="bench", path=folder, type="sendreceive",
                   rescanIntervalS="3600", fsWatcherEnabled="true", fsWatcherDelayS="10")
    ET.SubElement(f, "device", id=self_id)
    ET.SubElement(f, "device", id=other_id)
    root.insert(0, f)
    tree.write(path)


def run_syncthing(work, data, edits, tag, limit):
    homes = [os.path.join(work, f"st-{tag}-home-a"), os.path.join(work, f"st-{tag}-home-b")]
    fa, fb = os.path.join(work, f"st-{tag}-a"), os.path.join(work, f"st-{tag}-b")
    shutil.copytree(data, fa)
    os.makedirs(fb)
    for f in (fa, fb):
        os.makedirs(os.path.join(f, ".stfolder"))
    ids = []
    for h in homes:
        subprocess.run(["syncthing", "generate", f"--home={h}", "--no-default-folder"], check=True, capture_output=True)
        ids.append(subprocess.run(["syncthing", "serve", f"--home={h}", "--device-id"], check=True,
                                  capture_output=True, text=True).stdout.strip())
    ports = [free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)]
    guis = [free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)]
    st_configure(homes[0], fa, ports[0], guis[0], ids[1], ports[1], ids[0])
    st_configure(homes[1], fb, ports[1], guis[1], ids[0], ports[0], ids[1])
    env = dict(os.environ, STNOUPGRADE="1", STNODEFAULTFOLDER="1")
    log = open(os.path.join(work, f"syncthing-{tag}.log"), "w")
    t0 = time.monotonic()
    procs = [subprocess.Popen(["syncthing", "serve", f"--home={h}", "--no-browser", "--no-restart"],
                              stdout=log, stderr=log, env=env) for h in homes]
    try:
        wait_same(fa, [fb], limit)
        took = time.monotonic() - t0
        rss = [peak_rss_mib(p.pid) for p in procs]
        cpu = [cpu_s(p.pid) for p in procs]
        check_same(fa, [fb], "syncthing")
        median = edit_latency(fa, fb, edits, "syncthing")
    finally:
        stop(procs)
        log.close()
    for d in [fa, fb] + homes:
        shutil.rmtree(d, ignore_errors=True)
    return {"time": took, "edit": median, "rss_send": rss[0], "rss_recv": rss[1], "cpu_send": cpu[0], "cpu_recv": cpu[1]}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--rows", default="cp,peersync,syncthing")
    ap.add_argument("--peers", type=int, default=1, help="receivers for the peersync fan-out row")
    ap.add_argument("--binary", help="prebuilt examples/desktop (default: go build of this tree)")
    ap.add_argument("--ref-binary", help="another build of examples/desktop, run as row 'ref'")
    ap.add_argument("--limit", type=float, default=900, help="seconds before a row counts as failed")
    ap.add_argument("--keep-logs", help="copy the daemons' logs here")
    ap.add_argument("--profile", help="write the peersync daemons' CPU profiles (PEERSYNC_CPUPROFILE) to "
                    "DIR/TAG-NAME.*: `go tool pprof -top BINARY DIR/peersync-a.0*`")
    args = ap.parse_args()
    global PROFILE
    if args.profile:
        PROFILE = os.path.abspath(args.profile)
        os.makedirs(PROFILE, exist_ok=True)
    rows = [r for r in args.rows.split(",") if r]
    if args.ref_binary and "ref" not in rows:
        rows.append("ref")
    if "syncthing" in rows and not shutil.which("syncthing"):
        sys.exit("needs syncthing: apt-get install syncthing")
    work = tempfile.mkdtemp(prefix="compare-syncthing-")
    results = {}
    loads = []
    try:
        binary = args.binary
        if not binary and ("peersync" in rows):
            binary = os.path.join(work, "desktop")
            subprocess.run(["go", "build", "-o", binary, "./examples/desktop"], cwd=ROOT, check=True)
        data = os.path.join(work, "data")
        make_data(data, args.files, args.big_mib)
        runs = []
        for r in rows:
            if r in ("peersync", "ref") and args.peers > 1:
                runs += [(r, 1), (r, args.peers)]
            else:
                runs.append((r, args.peers if r in ("peersync", "ref") else 1))
        for rnd in range(args.rounds):
            order = runs if rnd % 2 == 0 else list(reversed(runs))
            for r, n in order:
                tag = f"{r}{n}-{rnd}"
                loads.append(loadavg())
                if r == "cp":
                    res = run_cp(work, data, tag)
                elif r == "syncthing":
                    res = run_syncthing(work, data, args.edits, tag, args.limit)
                else:
                    b = binary if r == "peersync" else args.ref_binary
                    res = run_peersync(work, data, args.edits, b, n, tag, args.limit)
                print(f"# round {rnd} {r} peers={n}: {res} (load {loads[-1]})", file=sys.stderr, flush=True)
                results.setdefault((r, n), []).append(res)
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for fn in os.listdir(work):
                if fn.endswith(".log"):
                    shutil.copy(os.path.join(work, fn), args.keep_logs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = lambda key, field: statistics.median(x[field] for x in results[key])
    fmt = lambda key, field: " / ".join(f"{x[field]:.2f}" for x in results[key])
    print(f"data: {args.files} files of 1-4 KiB in 20 folders + {args.big_mib} MiB; {os.cpu_count()} cores; "
          f"{args.rounds} round(s), alternating; load average at each row's start: {', '.join(loads)}")
    if "syncthing" in rows:
        ver = subprocess.run(["syncthing", "--version"], capture_output=True, text=True).stdout.split()[1]
        print(f"syncthing {ver}")
    print("| row | first sync, each round (s) | median (s) | peak RSS sender / receiver (MiB, max) "
          "| CPU sender / receiver (s, median) | edit latency median (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key in results:
        r, n = key
        label = r if r == "cp" or r == "syncthing" else f"{r} → {n} peer{'s' if n > 1 else ''}"
        rss = cpu = edit = "-"
        if r != "cp":
            rss = f"{max(x['rss_send'] for x in results[key]):.0f} / {max(x['rss_recv'] for x in results[key]):.0f}"
            cpu = f"{med(key, 'cpu_send'):.2f} / {med(key, 'cpu_recv'):.2f}"
            edit = f"{med(key, 'edit') * 1000:.0f}"
        print(f"| {label} | {fmt(key, 'time')} | {med(key, 'time'):.2f} | {rss} | {cpu} | {edit} |")
    ps = ("peersync", args.peers)
    ps1 = ("peersync", 1)
    print()
    if ps1 in results and ("syncthing", 1) in results:
        print(f"peersync/syncthing (median): {med(ps1, 'time') / med(('syncthing', 1), 'time'):.2f} (target <= 0.5)")
    if ps1 in results and ("cp", 1) in results:
        print(f"peersync/cp+sync (median): {med(ps1, 'time') / med(('cp', 1), 'time'):.2f} (target <= 2.0)")
    if args.peers > 1 and ps in results:
        print(f"peersync {args.peers} peers / 1 peer (median): {med(ps, 'time') / med(ps1, 'time'):.2f} (target <= 1.5)")
    if ("ref", 1) in results and ps1 in results:
        print(f"peersync/ref (median): {med(ps1, 'time') / med(('ref', 1), 'time'):.2f}; "
              f"CPU receiver {med(ps1, 'cpu_recv') / med(('ref', 1), 'cpu_recv'):.2f}, "
              f"sender {med(ps1, 'cpu_send') / med(('ref', 1), 'cpu_send'):.2f}")


if __name__ == "__main__":
    main()
