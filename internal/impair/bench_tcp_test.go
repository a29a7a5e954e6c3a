//go:build linux

package impair

import (
	"context"
	"testing"
	"time"

	"github.com/peersync/peersync/transport"
)

// BenchmarkImpaired also measures (e) peersync's TCP+TLS path
// (transport.Transport.DialTCP: kernel TCP with BBR, TLS 1.3, streams
// multiplexed on it), one connection, one stream. It is in a file of its
// own so that it can be set aside (with a build tag) should that API move.
func init() {
	extraPaths = append(extraPaths, benchPath{"peersync-tcp", tcpTLSPipes})
}

func tcpTLSPipes(b *testing.B, w *Wire) ([]pipe, func()) {
	ta, tb, idB := benchTransports(b, w, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := tb.TCPAddr().String()
	var c *transport.Conn
	// The dial opens its socket in the calling thread's namespace.
	err := w.A.Do(func() error {
		var err error
		c, err = ta.DialTCP(ctx, addr, idB)
		return err
	})
	if err != nil {
		b.Fatalf("DialTCP %s: %v", addr, err)
	}
	if c.Path() != transport.PathTCP {
		b.Fatalf("path %q, want tcp", c.Path())
	}
	return connPipes(b, tb, []*transport.Conn{c})
}
