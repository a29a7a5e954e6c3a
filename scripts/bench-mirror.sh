#!/usr/bin/env bash
# Upload throughput of package mirror against the reference clients, on the
# same data in the same run: a 100 MiB file and 2,000 files of 1-4 KiB in 20
# directories, to vsftpd (FTP, FTPS) and OpenSSH's sshd (SFTP) on loopback.
# References: lftp "mirror -R" (FTP, FTPS) and OpenSSH's sftp in batch mode
# ("put -r"). Each iteration runs ours (a first Sync: fresh state, empty
# target) then the reference. Needs root (the servers log in as a system user
# the test creates). PEERSYNC_MIRROR_BENCH_CONNS (default 4) sets our
# Config.Connections and lftp's --parallel. Usage:
#   [PEERSYNC_MIRROR_BENCH_CONNS=N] scripts/bench-mirror.sh [count] [bench regexp]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
filter=${2:-.}
need=()
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v lftp >/dev/null || need+=(lftp)
command -v sftp >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD), connections ${PEERSYNC_MIRROR_BENCH_CONNS:-4}"
go test -count="$count" -run '^$' -bench "BenchmarkMirrorUpload/$filter" -benchtime 1x -timeout 60m ./mirror/ |
  grep -E '^Benchmark|^ok|FAIL'
