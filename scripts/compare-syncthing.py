#!/usr/bin/env python3
"""Initial sync and edit latency: peersync against Syncthing, same data, same run.

DESIGN.md section 9 targets: initial sync of two peers on loopback, from launch,
faster than Syncthing; an edit on A visible on B in < 0.5 s (median).

Both tools run as two real processes on 127.0.0.1 with everything that could
leave the machine switched off (Syncthing: global/local announce, relays, NAT,
usage and crash reporting, upgrades; peersync: --no-discovery). Data: FILES small
random files (1-4 KiB) in 20 folders plus one BIG_MIB MiB random file.

Usage: scripts/compare-syncthing.py [--files 2000] [--big-mib 256] [--edits 5]
Needs: go, syncthing (Debian package). Prints a Markdown table.
"""
import argparse, hashlib, os, random, shutil, socket, subprocess, sys, tempfile, time
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
    h = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP]
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                h[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return h


def wait_same(src, dst, limit=600):
    want = summary(src)
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if summary(dst) == want:
            return
        time.sleep(0.05)
    raise SystemExit(f"timeout: {dst} never matched {src}")


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
    return lat[len(lat) // 2]


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def run_peersync(work, data, edits):
    binary = os.path.join(work, "desktop")
    subprocess.run(["go", "build", "-o", binary, "./examples/desktop"], cwd=ROOT, check=True)
    homes = [os.path.join(work, "ps-home-a"), os.path.join(work, "ps-home-b")]
    fa, fb = os.path.join(work, "ps-a"), os.path.join(work, "ps-b")
    shutil.copytree(data, fa)
    os.makedirs(fb)
    ports = [free_port(), free_port()]
    cli = lambda h, *a: subprocess.run([binary, "--home", h, *a], check=True, capture_output=True, text=True).stdout.strip()
    ids = [cli(homes[0], "init", "--name", "a"), cli(homes[1], "init", "--name", "b")]
    cli(homes[0], "folder", "add", "--id", "bench", fa)
    cli(homes[1], "folder", "add", "--id", "bench", fb)
    cli(homes[0], "peer", "add", "--name", "b", "--addr", f"127.0.0.1:{ports[1]}", "--folders", "bench", ids[1])
    cli(homes[1], "peer", "add", "--name", "a", "--addr", f"127.0.0.1:{ports[0]}", "--folders", "bench", ids[0])
    log = open(os.path.join(work, "peersync.log"), "w")
    t0 = time.monotonic()
    procs = [subprocess.Popen([binary, "--home", h, "run", "--listen", f"127.0.0.1:{p}", "--ui", "none", "--no-discovery"],
                              stdout=log, stderr=log) for h, p in zip(homes, ports)]
    try:
        wait_same(fa, fb)
        initial = time.monotonic() - t0
        assert digest(fa) == digest(fb), "peersync: content differs"
        median = edit_latency(fa, fb, edits, "peersync")
    finally:
        stop(procs)
    return initial, median


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


def run_syncthing(work, data, edits):
    homes = [os.path.join(work, "st-home-a"), os.path.join(work, "st-home-b")]
    fa, fb = os.path.join(work, "st-a"), os.path.join(work, "st-b")
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
    log = open(os.path.join(work, "syncthing.log"), "w")
    t0 = time.monotonic()
    procs = [subprocess.Popen(["syncthing", "serve", f"--home={h}", "--no-browser", "--no-restart"],
                              stdout=log, stderr=log, env=env) for h in homes]
    try:
        wait_same(fa, fb)
        initial = time.monotonic() - t0
        assert digest(fa) == digest(fb), "syncthing: content differs"
        median = edit_latency(fa, fb, edits, "syncthing")
    finally:
        stop(procs)
    return initial, median


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--edits", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("syncthing"):
        sys.exit("needs syncthing: apt-get install syncthing")
    work = tempfile.mkdtemp(prefix="compare-syncthing-")
    try:
        data = os.path.join(work, "data")
        make_data(data, args.files, args.big_mib)
        ps_init, ps_edit = run_peersync(work, data, args.edits)
        st_init, st_edit = run_syncthing(work, data, args.edits)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ver = subprocess.run(["syncthing", "--version"], capture_output=True, text=True).stdout.split()[1]
    print(f"data: {args.files} files of 1-4 KiB in 20 folders + {args.big_mib} MiB; {os.cpu_count()} cores; syncthing {ver}")
    print("| what | peersync | syncthing | ratio peersync/syncthing |")
    print("| --- | --- | --- | --- |")
    print(f"| initial sync from launch | {ps_init:.2f} s | {st_init:.2f} s | {ps_init / st_init:.2f} |")
    print(f"| edit on A visible on B (median of {args.edits}) | {ps_edit * 1000:.0f} ms | {st_edit * 1000:.0f} ms | {ps_edit / st_edit:.3f} |")


if __name__ == "__main__":
    main()
