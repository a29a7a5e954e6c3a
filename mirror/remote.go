package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// remote is one open session with a target. Paths are slash-separated and
// relative to the target's root directory. Every method may be interrupted by
// ctx, which closes the session's connections; a session that returned a
// non-permanent error is discarded by the caller.
type remote interface {
	// ReadFile returns the content of a file of at most limit bytes.
	// A missing file is a permanent error wrapping errNotFound.
	ReadFile(ctx context.Context, p string, limit int64) ([]byte, error)
	// Put creates or truncates p and writes r into it.
	Put(ctx context.Context, p string, r io.Reader) error
	// Rename moves from over to, replacing to if it exists.
	Rename(ctx context.Context, from, to string) error
	// Remove removes a file; a missing file is not an error.
	Remove(ctx context.Context, p string) error
	// Mkdir creates one directory level; an existing directory is not an error.
	Mkdir(ctx context.Context, p string) error
	// Rmdir removes an empty directory.
	Rmdir(ctx context.Context, p string) error
	// List lists the whole tree under the root (not following symlinks),
	// calling fn for each file and directory.
	List(ctx context.Context, fn func(p string, dir bool, size int64)) error
	// Close ends the session.
	Close() error
}

// errNotFound is wrapped by remote errors for a missing path.
var errNotFound = errors.New("no such file")

// permanentError marks an error the server answered (a refusal, a missing
// file, a failed login, a host key or certificate that does not match): trying
// again on a new connection would give the same answer.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// connSet tracks a session's network connections so that a cancelled
// context can close them all, which unblocks whatever call is in flight.
type connSet struct {
	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
}

func (s *connSet) add(c net.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return net.ErrClosed
	}
	// Drop connections closed earlier (FTP opens one per transfer).
	kept := s.conns[:0]
	for _, old := range s.conns {
		if !old.(*deadlineConn).isClosed() {
			kept = append(kept, old)
		}
	}
	s.conns = append(kept, c)
	return nil
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// watch closes every connection of s if ctx ends before the returned stop is
// called. It returns ctx's error wrapped into err when ctx ended.
func (s *connSet) watch(ctx context.Context) (stop func(err error) error) {
	cancel := context.AfterFunc(ctx, s.closeAll)
	return func(err error) error {
		if !cancel() && ctx.Err() != nil {
			return fmt.Errorf("%w (connection closed)", ctx.Err())
		}
		return err
	}
}

// deadlineConn pushes its deadline forward before every read and write, so
// a server that stops answering fails the call after timeout instead of
// hanging it forever.
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu     sync.Mutex // guards closed
	closed bool
}

func newDeadlineConn(c net.Conn, timeout time.Duration) *deadlineConn {
	return &deadlineConn{Conn: c, timeout: timeout}
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// CloseWrite half-closes a TCP connection (tls.Conn.CloseWrite needs it).
func (c *deadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *deadlineConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *deadlineConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
