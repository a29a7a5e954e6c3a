//go:build unix

package mirror

// Real servers for the tests: Debian's vsftpd (FTP and FTPS) and OpenSSH's
// sshd with its internal-sftp, each started per test on a loopback port with
// a generated configuration, logging in as a system user the tests create.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// testUserName is the system user the servers log in; created by the
// first test that needs it and removed by TestMain.
const testUserName = "psmirror-test"

var (
	testUserOnce    sync.Once
	testUserErr     error
	testUserCreated bool
	testUserPass    string
	testUID         int
	testGID         int
)

// needTestUser creates the login user (or skips loudly when not root).
func needTestUser(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("LOUD SKIP: the FTP/SFTP server tests need root (to run vsftpd and sshd and create a login user)")
	}
	testUserOnce.Do(func() {
		if _, err := user.Lookup(testUserName); err != nil {
			// vsftpd changes to the home directory before local_root.
			out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", testUserName).CombinedOutput()
			if err != nil {
				testUserErr = fmt.Errorf("useradd: %v: %s", err, out)
				return
			}
			testUserCreated = true
		}
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		testUserPass = hex.EncodeToString(b)
		cmd := exec.Command("chpasswd")
		cmd.Stdin = strings.NewReader(testUserName + ":" + testUserPass + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			testUserErr = fmt.Errorf("chpasswd: %v: %s", err, out)
			return
		}
		u, err := user.Lookup(testUserName)
		if err != nil {
			testUserErr = err
			return
		}
		testUID, _ = strconv.Atoi(u.Uid)
		testGID, _ = strconv.Atoi(u.Gid)
	})
	require.NoError(t, testUserErr)
}

func removeTestUser() {
	if testUserCreated {
		_ = exec.Command("userdel", testUserName).Run()
	}
}

// needBinary skips loudly when a Debian tool is missing.
func needBinary(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("LOUD SKIP: %s not found; install Debian's %s (.ci/run does)", path, pkg)
	}
}

// serverDirs makes a base directory the login user can reach, with the
// target root "root" inside it owned by that user.
func serverDirs(t testing.TB) (base, root string) {
	t.Helper()
	base, err := os.MkdirTemp("", "psmirror-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	root = filepath.Join(base, "root")
	require.NoError(t, os.Mkdir(root, 0o755))
	require.NoError(t, os.Chown(root, testUID, testGID))
	return base, root
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// server is a running vsftpd or sshd.
type server struct {
	t       testing.TB
	kind    Kind
	base    string // config, keys, logs
	root    string // the target directory, as a local path
	port    int
	argv    []string
	certDER []byte     // FTPS
	hostKey ssh.Signer // SFTP
	keyFile string     // SFTP client key

	out syncBuffer

	mu     sync.Mutex // guards cmd and exited
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// syncBuffer collects a server's output.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// url is the target URL (the password travels in Config.PasswordFile).
func (s *server) url() string {
	return fmt.Sprintf("%s://%s@127.0.0.1:%d%s", s.kind, testUserName, s.port, s.remotePath())
}

// remotePath is the target directory as the server sees it (vsftpd is
// chrooted to base).
func (s *server) remotePath() string {
	if s.kind == SFTP {
		return s.root
	}
	return "/root"
}

// config returns a Config for this server with a fresh state directory.
func (s *server) config(t testing.TB) Config {
	state := t.TempDir()
	cfg := Config{URL: s.url(), StateDir: state, RetryDelay: 20 * time.Millisecond, MaxAttempts: 4}
	switch s.kind {
	case SFTP:
		cfg.KeyFile = s.keyFile
	default:
		pw := filepath.Join(state, "password")
		require.NoError(t, os.WriteFile(pw, []byte(testUserPass+"\n"), 0o600))
		cfg.PasswordFile = pw
		if s.kind == FTPS {
			cfg.CertFingerprint = CertFingerprint(s.certDER)
		}
	}
	return cfg
}

// start runs the server and waits until its port accepts connections.
func (s *server) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			// Read the greeting (sent by the forked session process),
			// then wait until that process is gone, so that the probe
			// does not count against a per-address limit.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Read(make([]byte, 64))
			_ = c.Close()
			for j := 0; len(descendants(cmd.Process.Pid)) > 0; j++ {
				require.Less(t, j, 500, "%s: the probe's session does not end", s.argv[0])
				time.Sleep(10 * time.Millisecond)
			}
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start: %s", s.argv[0], s.output())
		default:
		}
		require.Less(t, i, 500, "%s does not listen on port %d: %s", s.argv[0], s.port, s.output())
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *server) output() string { return s.out.String() }

// stop kills the server and every session process it forked, and waits.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	killDescendants(cmd.Process.Pid)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// killSessions kills the processes serving connections, leaving the
// listener running: every open connection breaks.
func (s *server) killSessions() {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	killDescendants(cmd.Process.Pid)
}

// killDescendants SIGKILLs every descendant of pid and waits until they are
// gone (so their sockets are closed).
func killDescendants(pid int) {
	kids := descendants(pid)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	for _, k := range kids {
		for i := 0; i < 1000; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/status", k)); err != nil || isZombie(k) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] == 'Z'
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// startVsftpd runs vsftpd in the foreground on a loopback port, chrooted to
// a fresh directory; tls selects FTPS with a self-signed certificate.
func startVsftpd(t testing.TB, tls bool, extraConf ...string) *server {
	t.Helper()
	needBinary(t, "/usr/sbin/vsftpd", "vsftpd")
	needTestUser(t)
	base, root := serverDirs(t)
	s := &server{t: t, kind: FTP, base: base, root: root, port: freePort(t)}
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=YES
allow_writeable_chroot=YES
local_root=%s
passwd_chroot_enable=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=NO
syslog_enable=NO
vsftpd_log_file=%s/vsftpd.log
pam_service_name=vsftpd
userlist_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
max_clients=0
`, s.port, base, base)
	if len(extraConf) == 0 {
		conf += "max_per_ip=0\n"
	}
	conf += strings.Join(extraConf, "")
	if tls {
		s.kind = FTPS
		certFile, keyFile, der := selfSignedCert(t, base)
		s.certDER = der
		conf += fmt.Sprintf(`ssl_enable=YES
rsa_cert_file=%s
rsa_private_key_file=%s
allow_anon_ssl=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
ssl_ciphers=HIGH
`, certFile, keyFile)
	}
	require.NoError(t, os.MkdirAll("/var/run/vsftpd/empty", 0o755))
	cf := filepath.Join(base, "vsftpd.conf")
	require.NoError(t, os.WriteFile(cf, []byte(conf), 0o600))
	s.argv = []string{"/usr/sbin/vsftpd", cf}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key.
func selfSignedCert(t testing.TB, dir string) (certFile, keyFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile, der
}

// startSSHD runs OpenSSH's sshd in the foreground on a loopback port with a
// generated host key, the sftp subsystem and an authorized client key.
func startSSHD(t testing.TB) *server {
	t.Helper()
	needBinary(t, "/usr/sbin/sshd", "openssh-server")
	needTestUser(t)
	base, root := serverDirs(t)
	s := &server{t: t, kind: SFTP, base: base, root: root, port: freePort(t)}
	s.keyFile = filepath.Join(base, "client_key")
	_, clientPub := writeEd25519(t, s.keyFile)
	require.NoError(t, os.WriteFile(filepath.Join(base, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o644))
	s.newHostKey()
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host_key
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AuthorizedKeysFile %s/authorized_keys
StrictModes no
AllowUsers %s
Subsystem sftp internal-sftp
LogLevel ERROR
`, s.port, base, base, testUserName)
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	cf := filepath.Join(base, "sshd_config")
	require.NoError(t, os.WriteFile(cf, []byte(conf), 0o600))
	s.argv = []string{"/usr/sbin/sshd", "-D", "-e", "-f", cf}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// newHostKey writes a fresh host key for sshd (used at the next start).
func (s *server) newHostKey() {
	priv, _ := writeEd25519(s.t, filepath.Join(s.base, "host_key"))
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(s.t, err)
	s.hostKey = signer
}

// writeEd25519 writes a new OpenSSH private key file.
func writeEd25519(t testing.TB, file string) (ed25519.PrivateKey, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(block), 0o600))
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return priv, sp
}
