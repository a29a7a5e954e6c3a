package mirror

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path"
	"strings"

	"github.com/jlaffaye/ftp"
)

// ftpRemote is a session with an FTP or FTPS server (github.com/jlaffaye/ftp).
type ftpRemote struct {
	c     *ftp.ServerConn
	conns *connSet
	root  string // the target directory, as given to the server
}

var _ remote = (*ftpRemote)(nil)

// CertificateError is returned when an FTPS server's certificate does not
// match the pinned fingerprint (Config.CertFingerprint).
type CertificateError struct {
	// Host is the server's address.
	Host string
	// Want is the pinned SHA-256 fingerprint, Got the server's.
	Want, Got string
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("mirror: the TLS certificate of %s has fingerprint %s, but %s is pinned (Config.CertFingerprint): refusing to connect", e.Host, e.Got, e.Want)
}

// CertFingerprint returns the fingerprint of a DER certificate in the form
// Config.CertFingerprint takes: "SHA256:" and lowercase hex.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// parseCertFingerprint accepts "SHA256:" + hex, with or without colons
// between the bytes (as openssl x509 -fingerprint -sha256 prints them).
func parseCertFingerprint(s string) ([]byte, error) {
	h := strings.TrimSpace(s)
	if i := strings.IndexByte(h, ':'); i > 0 && strings.EqualFold(h[:i], "sha256") {
		h = h[i+1:]
	}
	if strings.HasPrefix(strings.ToLower(h), "sha256 fingerprint=") {
		h = h[len("sha256 fingerprint="):]
	}
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("mirror: certificate fingerprint %q: want SHA256: and 64 hex digits (as CertFingerprint prints)", s)
	}
	return b, nil
}

// tlsConfig builds the FTPS client configuration: the system's (or the
// given) roots and the host name by default; with a pin, exactly the pinned
// certificate and nothing else.
func tlsConfig(host string, roots *x509.CertPool, pin []byte) *tls.Config {
	cfg := &tls.Config{
		ServerName: host,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
		// Servers such as vsftpd require the data connections to resume
		// the control connection's TLS session (require_ssl_reuse).
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
	if pin != nil {
		cfg.InsecureSkipVerify = true // replaced by the pin check below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return permanent(&CertificateError{Host: host, Want: "SHA256:" + hex.EncodeToString(pin), Got: "(none)"})
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], pin) != 1 {
				return permanent(&CertificateError{Host: host, Want: "SHA256:" + hex.EncodeToString(pin), Got: CertFingerprint(cs.PeerCertificates[0].Raw)})
			}
			return nil
		}
	}
	return cfg
}

// dialFTP logs in and returns a session rooted at t.Path.
func dialFTP(ctx context.Context, t Target, password string, d dialParams) (*ftpRemote, error) {
	conns := &connSet{}
	var tc *tls.Config
	if t.Kind == FTPS {
		tc = tlsConfig(t.Host, d.roots, d.pin)
	}
	first := true
	dial := func(network, addr string) (net.Conn, error) {
		raw, err := d.dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := newDeadlineConn(raw, d.timeout)
		if err := conns.add(c); err != nil {
			return nil, err
		}
		if first || tc == nil {
			// The library upgrades the control connection itself after
			// AUTH TLS; data connections are ours to wrap.
			first = false
			return c, nil
		}
		return ftpsDataConn{tls.Client(c, tc)}, nil
	}
	opts := []ftp.DialOption{
		ftp.DialWithDialFunc(dial),
		ftp.DialWithForceListHidden(true), // see our temp files and the manifest
	}
	if tc != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(tc))
	}
	stop := conns.watch(ctx)
	c, err := ftp.Dial(t.Addr(), opts...)
	if err == nil {
		if lerr := c.Login(t.User, password); lerr != nil {
			_ = c.Quit()
			err = fmt.Errorf("login as %q: %w", t.User, lerr)
		}
	}
	if err = stop(err); err != nil {
		conns.closeAll()
		return nil, classifyFTP(fmt.Errorf("mirror: %s: %w", t, err))
	}
	return &ftpRemote{c: c, conns: conns, root: t.Path}, nil
}

// ftpsDataConn closes an FTPS data connection the orderly way: close_notify
// and a TCP half-close, then read until the server closes. Closing at once
// would leave the server's unread TLS 1.3 session ticket in our receive
// buffer, so the kernel would answer with a reset and the server (vsftpd,
// proftpd with OpenSSL) would drop the end of an upload ("426 Failure
// reading network stream").
type ftpsDataConn struct{ *tls.Conn }

func (c ftpsDataConn) Close() error {
	if c.ConnectionState().HandshakeComplete {
		if err := c.CloseWrite(); err == nil {
			_, _ = io.Copy(io.Discard, c.Conn)
		}
	}
	return c.Conn.Close()
}

// classifyFTP marks server answers 5xx (refusals), TLS verification failures
// and pin mismatches as permanent; everything else (a dropped connection, a
// 4xx "try again") is worth another connection.
func classifyFTP(err error) error {
	if err == nil || isPermanent(err) {
		return err
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		if te.Code == ftp.StatusFileUnavailable {
			return permanent(fmt.Errorf("%w: %w", errNotFound, err))
		}
		return permanent(err)
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) {
		return permanent(err)
	}
	return err
}

func (r *ftpRemote) abs(p string) string {
	if p == "" || p == "." {
		return r.root
	}
	return path.Join(r.root, p)
}

func (r *ftpRemote) do(ctx context.Context, fn func() error) error {
	stop := r.conns.watch(ctx)
	return classifyFTP(stop(fn()))
}

func (r *ftpRemote) ReadFile(ctx context.Context, p string, limit int64) ([]byte, error) {
	var b []byte
	err := r.do(ctx, func() error {
		resp, err := r.c.Retr(r.abs(p))
		if err != nil {
			return err
		}
		b, err = io.ReadAll(io.LimitReader(resp, limit+1))
		if cerr := resp.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err == nil && int64(len(b)) > limit {
		return nil, permanent(fmt.Errorf("%s is larger than %d bytes", p, limit))
	}
	return b, err
}

func (r *ftpRemote) Put(ctx context.Context, p string, src io.Reader) error {
	return r.do(ctx, func() error { return r.c.Stor(r.abs(p), src) })
}

func (r *ftpRemote) Rename(ctx context.Context, from, to string) error {
	return r.do(ctx, func() error { return r.c.Rename(r.abs(from), r.abs(to)) })
}

func (r *ftpRemote) Remove(ctx context.Context, p string) error {
	err := r.do(ctx, func() error { return r.c.Delete(r.abs(p)) })
	if errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

func (r *ftpRemote) Mkdir(ctx context.Context, p string) error {
	if p == "." {
		return r.mkdirRoot(ctx)
	}
	err := r.do(ctx, func() error { return r.c.MakeDir(r.abs(p)) })
	if err != nil && isPermanent(err) {
		// Most servers answer 550 for an existing directory; check.
		if _, lerr := r.listDir(ctx, p); lerr == nil {
			return nil
		}
	}
	return err
}

// mkdirRoot creates the target directory and its missing parents.
func (r *ftpRemote) mkdirRoot(ctx context.Context) error {
	if r.root == "." || r.root == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(r.root, "/"), "/")
	prefix := ""
	if strings.HasPrefix(r.root, "/") {
		prefix = "/"
	}
	var err error
	for i := range parts {
		d := prefix + strings.Join(parts[:i+1], "/")
		if err = r.do(ctx, func() error { return r.c.MakeDir(d) }); err != nil && !isPermanent(err) {
			return err
		}
	}
	if err != nil {
		// The last level may have existed already: check.
		if _, lerr := r.listDir(ctx, "."); lerr == nil {
			return nil
		}
	}
	return err
}

func (r *ftpRemote) Rmdir(ctx context.Context, p string) error {
	return r.do(ctx, func() error { return r.c.RemoveDir(r.abs(p)) })
}

func (r *ftpRemote) listDir(ctx context.Context, p string) ([]*ftp.Entry, error) {
	var entries []*ftp.Entry
	err := r.do(ctx, func() error {
		var err error
		entries, err = r.c.List(r.abs(p))
		return err
	})
	return entries, err
}

func (r *ftpRemote) List(ctx context.Context, fn func(p string, dir bool, size int64)) error {
	queue := []string{"."}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		entries, err := r.listDir(ctx, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name == "." || e.Name == ".." || strings.Contains(e.Name, "/") {
				continue
			}
			p := path.Join(dir, e.Name)
			switch e.Type {
			case ftp.EntryTypeFolder:
				fn(p, true, 0)
				queue = append(queue, p)
			case ftp.EntryTypeFile:
				fn(p, false, int64(e.Size))
			}
		}
	}
	return nil
}

func (r *ftpRemote) Close() error {
	err := r.c.Quit()
	r.conns.closeAll()
	return err
}
