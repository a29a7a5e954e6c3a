package mirror

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrClosed is returned by Sync after Close.
var ErrClosed = errors.New("mirror: closed")

// Config configures a Mirror. Only URL and StateDir are required.
type Config struct {
	// URL names the target: ftp://, ftps:// or sftp:// (see ParseTarget).
	// A password in it is used but never logged or printed.
	URL string
	// PasswordFile, if set, is a file whose first line is the password
	// (a trailing newline is dropped). Zero: the URL's password, if any.
	// Setting both is an error.
	PasswordFile string
	// KeyFile, if set, is an unencrypted SSH private key file (OpenSSH,
	// PKCS#1 or PKCS#8 PEM) for sftp:// targets. Zero: no key; the password
	// is used. A key and a password may both be given (the key is tried
	// first).
	KeyFile string
	// KnownHostsFile is the OpenSSH known_hosts file that pins SFTP host
	// keys: an unknown host's key is appended on first use, a changed key is
	// refused (*HostKeyChangedError). Zero: StateDir/known_hosts.
	KnownHostsFile string
	// CertFingerprint, if set, pins the FTPS server's certificate by its
	// SHA-256 ("SHA256:" + 64 hex digits, colons allowed; CertFingerprint
	// computes it, and `openssl x509 -noout -fingerprint -sha256` prints
	// it): that certificate is accepted whoever signed it, and no other
	// (*CertificateError). Zero: the certificate must chain to RootCAs and
	// name the URL's host.
	CertFingerprint string
	// RootCAs are the FTPS trust roots. Nil: the system's.
	RootCAs *x509.CertPool
	// StateDir holds the known_hosts file (unless KnownHostsFile says
	// otherwise) and the local hash cache. Required; created if missing.
	StateDir string
	// Logger receives progress and retry messages; URLs in them are
	// redacted. Nil: discard.
	Logger *slog.Logger
	// MaxAttempts bounds the tries of one operation (connect, upload, rename,
	// delete) across broken connections. Zero: 5.
	MaxAttempts int
	// RetryDelay is the wait before the second try; it doubles with each
	// further try, up to 30 s. Zero: 1 s.
	RetryDelay time.Duration
	// Connections is how many connections upload files at once (each
	// upload still goes through its own temporary name). A server that
	// refuses an extra connection is used with fewer. Zero: 4; 1 uploads
	// one file at a time.
	Connections int
	// Dial opens the TCP connections to the server (for FTP also the data
	// connections). Nil: a net.Dialer with Timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout is how long a connection may stay silent while we wait for
	// it (dial, read or write) before it counts as broken. Zero: 30 s.
	Timeout time.Duration
}

// Progress is what a Sync reports to its progress callback: once after
// planning, while a file uploads (about every MiB) and after each file.
type Progress struct {
	// FilesDone and FilesTotal count the uploads and deletions of this sync.
	FilesDone, FilesTotal int
	// BytesDone and BytesTotal count the bytes to upload in this sync.
	BytesDone, BytesTotal int64
	// Path is the file being worked on; empty in the first report.
	Path string
}

// Result says what one Sync did.
type Result struct {
	// Uploaded, Deleted and Unchanged count files.
	Uploaded, Deleted, Unchanged int
	// BytesUploaded is the content bytes uploaded (retries not counted twice).
	BytesUploaded int64
	// Listed is true when the target's manifest was missing or unreadable
	// and the target was listed instead.
	Listed bool
	// Retries counts the operations repeated after a broken connection.
	Retries int
}

// FileError reports the files a Sync could not mirror because the server
// refused them (permission denied, quota, an invalid name). The other files
// were mirrored; the failed ones are retried by the next Sync.
type FileError struct {
	// Failed maps each slash path to the server's answer.
	Failed map[string]error
}

func (e *FileError) Error() string {
	var first string
	var ferr error
	for p, err := range e.Failed {
		if first == "" || p < first {
			first, ferr = p, err
		}
	}
	return fmt.Sprintf("mirror: %d file(s) not mirrored, first %q: %v", len(e.Failed), first, ferr)
}

// Mirror keeps a copy of a local directory tree on an FTP, FTPS or SFTP
// target. Its methods may be called from several goroutines; Syncs run one
// at a time.
type Mirror struct {
	target   Target
	password string
	params   dialParams
	stateDir string
	log      *slog.Logger
	attempts int
	delay    time.Duration
	conns    int

	// testHookUpload, when set (tests only), wraps each upload's reader.
	testHookUpload func(p string, r io.Reader) io.Reader

	syncMu sync.Mutex // held by Sync; serializes syncs

	mu      sync.Mutex // guards closed and active
	closed  bool
	active  context.CancelFunc // cancels the running Sync; nil if none
	hostKey sync.Mutex         // serializes known_hosts access
}

// New validates cfg and returns a Mirror. It does not connect: the first
// Sync does. Errors: *URLError for a bad URL; others name the bad field.
func New(cfg Config) (*Mirror, error) {
	t, err := ParseTarget(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return nil, errors.New("mirror: Config.StateDir is required")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("mirror: state dir: %w", err)
	}
	m := &Mirror{
		target:   t,
		password: t.Password,
		stateDir: cfg.StateDir,
		log:      cfg.Logger,
		attempts: cfg.MaxAttempts,
		delay:    cfg.RetryDelay,
		params:   dialParams{timeout: cfg.Timeout, roots: cfg.RootCAs, dial: cfg.Dial},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("target", t.String())
	if m.attempts <= 0 {
		m.attempts = 5
	}
	if m.delay <= 0 {
		m.delay = time.Second
	}
	if m.conns = cfg.Connections; m.conns <= 0 {
		m.conns = 4
	}
	if m.params.timeout <= 0 {
		m.params.timeout = 30 * time.Second
	}
	if m.params.dial == nil {
		m.params.dial = (&net.Dialer{Timeout: m.params.timeout}).DialContext
	}
	m.params.hostKeyMu = &m.hostKey
	if cfg.PasswordFile != "" {
		if t.HasPassword {
			return nil, fmt.Errorf("mirror: %s has a password and Config.PasswordFile %q is set: give one", t, cfg.PasswordFile)
		}
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("mirror: password file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		m.password = strings.TrimSuffix(line, "\r")
	}
	if cfg.CertFingerprint != "" {
		if t.Kind != FTPS {
			return nil, fmt.Errorf("mirror: Config.CertFingerprint is for ftps:// targets, not %s", t.Kind)
		}
		if m.params.pin, err = parseCertFingerprint(cfg.CertFingerprint); err != nil {
			return nil, err
		}
	}
	if cfg.KeyFile != "" {
		if t.Kind != SFTP {
			return nil, fmt.Errorf("mirror: Config.KeyFile is for sftp:// targets, not %s", t.Kind)
		}
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mirror: key file: %w", err)
		}
		if m.params.signer, err = ssh.ParsePrivateKey(b); err != nil {
			return nil, fmt.Errorf("mirror: key file %q: %w (only unencrypted keys are supported)", cfg.KeyFile, err)
		}
	}
	if t.Kind == SFTP && m.params.signer == nil && m.password == "" {
		return nil, fmt.Errorf("mirror: %s: no password and no Config.KeyFile", t)
	}
	m.params.knownHosts = cfg.KnownHostsFile
	if m.params.knownHosts == "" {
		m.params.knownHosts = filepath.Join(cfg.StateDir, "known_hosts")
	}
	return m, nil
}

// Target returns the parsed URL; its String hides the password.
func (m *Mirror) Target() Target { return m.target }

// String is the target URL with the password hidden.
func (m *Mirror) String() string { return m.target.String() }

// Close cancels a running Sync, which then closes its connections and
// returns an error wrapping context.Canceled, and makes later Syncs return
// ErrClosed. A Mirror starts no goroutines of its own, so there is nothing
// else to wait for; Close may be called from a progress callback. It is
// idempotent.
func (m *Mirror) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.active != nil {
		m.active()
	}
	return nil
}

// cacheFile is the local hash cache of one directory mirrored to this target.
func (m *Mirror) cacheFile(dir string) string {
	sum := sha256.Sum256([]byte(m.target.String() + "\n" + dir))
	return filepath.Join(m.stateDir, "mirror-cache-"+hex.EncodeToString(sum[:8])+".json")
}

// dial opens a new session.
func (m *Mirror) dial(ctx context.Context) (remote, error) {
	if m.target.Kind == SFTP {
		r, err := dialSFTP(ctx, m.target, m.password, m.params)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	r, err := dialFTP(ctx, m.target, m.password, m.params)
	if err != nil {
		return nil, err
	}
	return r, nil
}
