package mirror

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dialParams are the connection settings New derives from Config.
type dialParams struct {
	timeout    time.Duration
	dial       func(ctx context.Context, network, addr string) (net.Conn, error)
	roots      *x509.CertPool // FTPS; nil: the system's
	pin        []byte         // FTPS certificate SHA-256; nil: verify the chain
	signer     ssh.Signer     // SFTP key; nil: password only
	knownHosts string         // SFTP known_hosts file
	hostKeyMu  *sync.Mutex    // serializes reads and appends of knownHosts
}

// HostKeyChangedError is returned when an SFTP server presents a host key
// other than the one pinned for it in the known_hosts file. Either the server
// was reinstalled or someone is in the middle; if the change is expected,
// delete the host's line from File and sync again to pin the new key.
type HostKeyChangedError struct {
	// Host is the server's address as written in the known_hosts file.
	Host string
	// File is the known_hosts file holding the pin.
	File string
	// Line is the line number of the pinned key in File.
	Line int
	// Pinned is the fingerprint (SHA256:…, as ssh-keygen -l prints it) of
	// the pinned key, Got that of the key the server presented.
	Pinned, Got string
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("mirror: the SSH host key of %s has changed: pinned %s (%s line %d), server presented %s: refusing to connect; if the change is expected, delete that line and sync again",
		e.Host, e.Pinned, e.File, e.Line, e.Got)
}

// hostKeyCallback verifies the server's key against the known_hosts file and
// pins it there on first use.
func hostKeyCallback(file string, mu *sync.Mutex) (ssh.HostKeyCallback, error) {
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			return nil, err
		}
	}
	check, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("mirror: known hosts file %q: %w", file, err)
	}
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err // nil, or a revoked key
		}
		if len(ke.Want) > 0 {
			w := ke.Want[0]
			return permanent(&HostKeyChangedError{Host: knownhosts.Normalize(hostname), File: w.Filename, Line: w.Line,
				Pinned: ssh.FingerprintSHA256(w.Key), Got: ssh.FingerprintSHA256(key)})
		}
		// First use: pin it.
		mu.Lock()
		defer mu.Unlock()
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
		if _, err := f.WriteString(line); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	}
	return cb, nil
}

// pinnedAlgorithms returns the host key algorithms of the keys pinned for
// addr, so that a server with several host keys presents the pinned kind
// (as OpenSSH's client does); nil when none is pinned.
func pinnedAlgorithms(file, addr string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	host := knownhosts.Normalize(addr)
	var algos []string
	for len(b) > 0 {
		_, hosts, key, _, rest, err := ssh.ParseKnownHosts(b)
		if err != nil {
			break
		}
		b = rest
		for _, h := range hosts {
			if h == host {
				switch key.Type() {
				case ssh.KeyAlgoRSA:
					algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
				default:
					algos = append(algos, key.Type())
				}
			}
		}
	}
	return algos
}

// sftpRemote is a session with an SFTP server (github.com/pkg/sftp over
// golang.org/x/crypto/ssh).
type sftpRemote struct {
	ssh   *ssh.Client
	c     *sftp.Client
	conns *connSet
	root  string
}

var _ remote = (*sftpRemote)(nil)

func dialSFTP(ctx context.Context, t Target, password string, d dialParams) (*sftpRemote, error) {
	cb, err := hostKeyCallback(d.knownHosts, d.hostKeyMu)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              t.User,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: pinnedAlgorithms(d.knownHosts, t.Addr()),
		Timeout:           d.timeout,
	}
	if d.signer != nil {
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(d.signer))
	}
	if password != "" {
		cfg.Auth = append(cfg.Auth, ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
				answers := make([]string, len(qs))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	conns := &connSet{}
	stop := conns.watch(ctx)
	r, err := func() (*sftpRemote, error) {
		raw, err := d.dial(ctx, "tcp", t.Addr())
		if err != nil {
			return nil, err
		}
		c := newDeadlineConn(raw, d.timeout)
		if err := conns.add(c); err != nil {
			return nil, err
		}
		sc, chans, reqs, err := ssh.NewClientConn(c, t.Addr(), cfg)
		if err != nil {
			if !isPermanent(err) && strings.Contains(err.Error(), "unable to authenticate") {
				err = permanent(fmt.Errorf("login as %q refused: %w", t.User, err))
			}
			return nil, err
		}
		client := ssh.NewClient(sc, chans, reqs)
		fc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
		if err != nil {
			_ = client.Close()
			return nil, err
		}
		return &sftpRemote{ssh: client, c: fc, conns: conns, root: t.Path}, nil
	}()
	if err = stop(err); err != nil {
		conns.closeAll()
		if r != nil {
			_ = r.Close()
		}
		return nil, classifySFTP(fmt.Errorf("mirror: %s: %w", t, err))
	}
	return r, nil
}

// classifySFTP marks the server's status answers (no such file, permission
// denied, failure) as permanent.
func classifySFTP(err error) error {
	if err == nil || isPermanent(err) {
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return permanent(fmt.Errorf("%w: %w", errNotFound, err))
	}
	var se *sftp.StatusError
	if errors.As(err, &se) || errors.Is(err, fs.ErrPermission) {
		return permanent(err)
	}
	return err
}

func (r *sftpRemote) abs(p string) string {
	if p == "" || p == "." {
		return r.root
	}
	return path.Join(r.root, p)
}

func (r *sftpRemote) do(ctx context.Context, fn func() error) error {
	stop := r.conns.watch(ctx)
	return classifySFTP(stop(fn()))
}

func (r *sftpRemote) ReadFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	var b []byte
	err := r.do(ctx, func() error {
		f, err := r.c.Open(r.abs(p))
		if err != nil {
			return err
		}
		b, err = io.ReadAll(io.LimitReader(f, limit+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err == nil && int64(len(b)) > limit {
		return nil, permanent(fmt.Errorf("%s is larger than %d bytes", p, limit))
	}
	return b, err
}

func (r *sftpRemote) Put(ctx context.Context, p string, src io.Reader) error {
	return r.do(ctx, func() error {
		f, err := r.c.OpenFile(r.abs(p), os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		_, err = f.ReadFrom(src)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

func (r *sftpRemote) Rename(ctx context.Context, from, to string) error {
	return r.do(ctx, func() error {
		if _, ok := r.c.HasExtension("posix-rename@openssh.com"); ok {
			return r.c.PosixRename(r.abs(from), r.abs(to))
		}
		// SFTP v3's rename refuses an existing target: remove it first
		// (a reader may briefly see no file, never half a file).
		if err := r.c.Remove(r.abs(to)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return r.c.Rename(r.abs(from), r.abs(to))
	})
}

func (r *sftpRemote) Remove(ctx context.Context, p string) error {
	err := r.do(ctx, func() error { return r.c.Remove(r.abs(p)) })
	if errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

func (r *sftpRemote) Mkdir(ctx context.Context, p string) error {
	if p == "." {
		return r.do(ctx, func() error { return r.c.MkdirAll(r.root) })
	}
	return r.do(ctx, func() error {
		err := r.c.Mkdir(r.abs(p))
		if err != nil {
			if fi, serr := r.c.Stat(r.abs(p)); serr == nil && fi.IsDir() {
				return nil
			}
		}
		return err
	})
}

func (r *sftpRemote) Rmdir(ctx context.Context, p string) error {
	return r.do(ctx, func() error { return r.c.RemoveDirectory(r.abs(p)) })
}

func (r *sftpRemote) List(ctx context.Context, fn func(p string, dir bool, size int64)) error {
	queue := []string{"."}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		var entries []os.FileInfo
		err := r.do(ctx, func() error {
			var err error
			entries, err = r.c.ReadDirContext(ctx, r.abs(dir))
			return err
		})
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() == "." || e.Name() == ".." {
				continue
			}
			p := path.Join(dir, e.Name())
			switch {
			case e.IsDir():
				fn(p, true, 0)
				queue = append(queue, p)
			case e.Mode().IsRegular():
				fn(p, false, e.Size())
			}
		}
	}
	return nil
}

func (r *sftpRemote) Close() error {
	err := r.c.Close()
	if cerr := r.ssh.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	r.conns.closeAll()
	return err
}
