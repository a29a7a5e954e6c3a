//go:build unix

package mirror

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkMirrorUpload uploads the same data to each real server with a
// first Sync (fresh state, empty target: everything hashed and sent) and
// with the reference client, alternately in each iteration: lftp's
// "mirror -R" for FTP and FTPS, OpenSSH's sftp in batch mode ("put -r") for
// SFTP. Reported: seconds per upload for each, their ratio, and our MiB/s.
// PEERSYNC_MIRROR_BENCH_CONNS sets Config.Connections and lftp's --parallel
// (default 4; OpenSSH's sftp uploads one file at a time whatever it is).
// Run with scripts/bench-mirror.sh.
func BenchmarkMirrorUpload(b *testing.B) {
	conns := 4
	if v := os.Getenv("PEERSYNC_MIRROR_BENCH_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		conns = n
	}
	data := map[string]func(t testing.TB, dir string){
		"100MiB": func(t testing.TB, dir string) { writeFile(t, dir, "big.bin", randBytes(100<<20, 11)) },
		"2000files": func(t testing.TB, dir string) {
			for i := range 2000 {
				writeFile(t, dir, fmt.Sprintf("d%02d/f%04d.txt", i%20, i), randBytes(1024+i%3072, uint64(i)))
			}
		},
	}
	for _, k := range kinds {
		for _, set := range []string{"100MiB", "2000files"} {
			b.Run(k.name+"/"+set, func(b *testing.B) {
				s := k.start(b)
				local := b.TempDir()
				data[set](b, local)
				var size int64
				files, _ := treeHashes(b, local)
				for p := range files {
					fi, err := os.Stat(filepath.Join(local, p))
					require.NoError(b, err)
					size += fi.Size()
				}
				var ours, ref time.Duration
				b.ResetTimer()
				for range b.N {
					emptyDir(b, s.root)
					cfg := s.config(b)
					cfg.Connections = conns
					m, err := New(cfg)
					require.NoError(b, err)
					start := time.Now()
					res, err := m.Sync(context.Background(), local, nil)
					ours += time.Since(start)
					require.NoError(b, err)
					require.Equal(b, len(files), res.Uploaded)
					require.NoError(b, m.Close())

					emptyDir(b, s.root)
					start = time.Now()
					referenceUpload(b, s, conns, local)
					ref += time.Since(start)
					got, _ := treeHashes(b, filepath.Join(s.root, "ref"))
					require.Equal(b, files, got, "the reference client uploaded everything")
				}
				b.StopTimer()
				n := float64(b.N)
				b.ReportMetric(ours.Seconds()/n, "ours-s")
				b.ReportMetric(ref.Seconds()/n, "ref-s")
				b.ReportMetric(ours.Seconds()/ref.Seconds(), "ours/ref")
				b.ReportMetric(float64(size)/(1<<20)/(ours.Seconds()/n), "ours-MiB/s")
				b.ReportMetric(float64(size)/(1<<20)/(ref.Seconds()/n), "ref-MiB/s")
			})
		}
	}
}

// emptyDir removes everything inside dir.
func emptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		require.NoError(t, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
}

// referenceUpload uploads local into <target>/ref with lftp or sftp.
func referenceUpload(t testing.TB, s *server, conns int, local string) {
	t.Helper()
	var cmd *exec.Cmd
	switch s.kind {
	case SFTP:
		if _, err := exec.LookPath("sftp"); err != nil {
			t.Skip("LOUD SKIP: the sftp client is missing (Debian openssh-client)")
		}
		batch := filepath.Join(t.TempDir(), "batch")
		require.NoError(t, os.WriteFile(batch, []byte(fmt.Sprintf("put -r %s %s/ref\n", local, s.root)), 0o600))
		cmd = exec.Command("sftp", "-b", batch, "-i", s.keyFile, "-P", fmt.Sprint(s.port),
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			testUserName+"@127.0.0.1")
	default:
		if _, err := exec.LookPath("lftp"); err != nil {
			t.Skip("LOUD SKIP: lftp is missing (apt-get install lftp)")
		}
		tls := "set ftp:ssl-allow no;"
		if s.kind == FTPS {
			tls = "set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:verify-certificate no;"
		}
		script := fmt.Sprintf("%s set net:max-retries 1; open -u %s,%s -p %d 127.0.0.1; mirror -R --no-perms --parallel=%d %s /root/ref; quit",
			tls, testUserName, testUserPass, s.port, conns, local)
		cmd = exec.Command("lftp", "-c", script)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(cmd.Args[:1], " "), out)
}
