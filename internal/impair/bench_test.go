//go:build linux

package impair

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// BenchmarkImpaired moves bulk data from A to B across impaired wires (1%
// loss and 20 ms each way; 5% loss and 100 ms each way) over each path
// peersync could use, and reports each path's rate and its ratio to kernel
// TCP with BBR measured in the same run ("x-bbr"):
//
//	go test ./internal/impair -run '^$' -bench Impaired -benchtime 1x
//
// Each measurement stops at PEERSYNC_IMPAIR_MIB MiB delivered (default 64)
// or PEERSYNC_IMPAIR_SECONDS seconds (default 20), whichever comes first,
// counting from the end of the handshake; so a slow path is measured over a
// fixed time, slow start included. Root only (skipped loudly otherwise).
func BenchmarkImpaired(b *testing.B) {
	for _, p := range []struct {
		name string
		cfg  Config
	}{
		{"loss1pct-delay20ms", Config{Delay: 20 * time.Millisecond, Loss: 0.01}},
		{"loss5pct-delay100ms", Config{Delay: 100 * time.Millisecond, Loss: 0.05}},
	} {
		b.Run(p.name, func(b *testing.B) {
			var bbr float64
			for _, path := range benchPaths() {
				b.Run(path.name, func(b *testing.B) {
					var bytes int64
					var took time.Duration
					for range b.N {
						w := New(b, p.cfg)
						pipes, stop := path.connect(b, w)
						n, d := measure(pipes, stop)
						bytes += n
						took += d
						ab, ba := w.Stats()
						b.Logf("%s: %.1f MiB in %v; A→B %+v; B→A %+v", path.name, float64(n)/(1<<20), d.Round(time.Millisecond), ab, ba)
					}
					rate := float64(bytes) / (1 << 20) / took.Seconds()
					b.ReportMetric(rate, "MiB/s")
					if path.name == "tcp-bbr" {
						bbr = rate
					}
					if bbr > 0 {
						b.ReportMetric(rate/bbr, "x-bbr")
					}
				})
			}
		})
	}
}

// pipe is one bulk flow: bytes written to w come out of r.
type pipe struct {
	w io.Writer
	r io.Reader
}

// benchPath is one way of moving bytes from A to B. connect sets up its
// flows (handshakes done) and returns them with a function that tears them
// down, unblocking every Read and Write.
type benchPath struct {
	name    string
	connect func(b *testing.B, w *Wire) ([]pipe, func())
}

// extraPaths are appended to benchPaths by files behind build tags.
var extraPaths []benchPath

func benchPaths() []benchPath {
	return append([]benchPath{
		{"tcp-bbr", func(b *testing.B, w *Wire) ([]pipe, func()) { return tcpPipe(b, w, "bbr") }},
		{"tcp-cubic", func(b *testing.B, w *Wire) ([]pipe, func()) { return tcpPipe(b, w, "cubic") }},
		{"quic-1conn", func(b *testing.B, w *Wire) ([]pipe, func()) { return quicPipes(b, w, 1) }},
		{"quic-4conns", func(b *testing.B, w *Wire) ([]pipe, func()) { return quicPipes(b, w, 4) }},
	}, extraPaths...)
}

// benchLimits returns how much and how long each measurement moves at most.
func benchLimits() (int64, time.Duration) {
	mib, err := strconv.Atoi(os.Getenv("PEERSYNC_IMPAIR_MIB"))
	if err != nil || mib <= 0 {
		mib = 64
	}
	secs, err := strconv.ParseFloat(os.Getenv("PEERSYNC_IMPAIR_SECONDS"), 64)
	if err != nil || secs <= 0 {
		secs = 20
	}
	return int64(mib) << 20, time.Duration(secs * float64(time.Second))
}

// measure runs every pipe flat out until the limits, then stops them and
// returns the bytes delivered and the time taken.
func measure(pipes []pipe, stop func()) (int64, time.Duration) {
	limit, limitTime := benchLimits()
	var got atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, p := range pipes {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				if _, err := p.w.Write(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				n, err := p.r.Read(buf)
				got.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for got.Load() < limit && time.Since(start) < limitTime {
		<-tick.C
	}
	took, n := time.Since(start), got.Load()
	stop()
	wg.Wait()
	return n, took
}

// tcpPipe connects A to B with one kernel TCP connection whose sender (A)
// uses congestion control cc.
func tcpPipe(b *testing.B, w *Wire, cc string) ([]pipe, func()) {
	ln := listenTCP(b, w.B, AddrB)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	var c net.Conn
	err := w.A.Do(func() error {
		d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
			}); err != nil {
				return err
			}
			return serr
		}}
		var err error
		c, err = d.Dial("tcp", ln.Addr().String())
		return err
	})
	if err != nil {
		b.Fatalf("dial with %s: %v", cc, err)
	}
	in, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	if got := tcpCongestion(c); got != cc {
		b.Fatalf("congestion control %q, want %q", got, cc)
	}
	return []pipe{{w: c, r: in}}, func() { c.Close(); in.Close() }
}

// tcpCongestion returns the congestion control of a TCP connection.
func tcpCongestion(c net.Conn) string {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return ""
	}
	var cc string
	_ = rc.Control(func(fd uintptr) {
		cc, _ = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	})
	return strings.TrimRight(cc, "\x00")
}

// benchTransports returns a peersync Transport in A and one in B (their
// UDP sockets, and TCP listeners if any, opened inside the namespaces),
// each accepting only the other.
func benchTransports(b *testing.B, w *Wire, cfg func(transport.Config) transport.Config) (ta, tb *transport.Transport, idB crypto.DeviceID) {
	b.Helper()
	ia, err := crypto.GenerateIdentity(nil)
	if err != nil {
		b.Fatal(err)
	}
	ib, err := crypto.GenerateIdentity(nil)
	if err != nil {
		b.Fatal(err)
	}
	only := func(id *crypto.Identity) func(crypto.DeviceID) error {
		return func(d crypto.DeviceID) error {
			if d != id.DeviceID() {
				return crypto.ErrUnknownPeer
			}
			return nil
		}
	}
	mk := func(ns interface{ Do(func() error) error }, addr string, id, peer *crypto.Identity) *transport.Transport {
		var tr *transport.Transport
		c := transport.Config{Identity: id, ListenAddr: addr + ":0", Authorize: only(peer), HandshakeTimeout: 30 * time.Second}
		if cfg != nil {
			c = cfg(c)
		}
		if err := ns.Do(func() error { tr, err = transport.New(c); return err }); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tr.Close() })
		return tr
	}
	ta = mk(w.A, AddrA.String(), ia, ib)
	tb = mk(w.B, AddrB.String(), ib, ia)
	return ta, tb, ib.DeviceID()
}

// connPipes opens one stream on each of conns (A's side), sending a first
// byte so that B sees it, accepts as many connections on B and one stream
// on each, and returns the flows and a function that closes every
// connection. Which of A's streams feeds which of B's does not matter: each
// flow's writer and reader run on their own.
func connPipes(b *testing.B, tb *transport.Transport, conns []*transport.Conn) ([]pipe, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]*transport.Conn(nil), conns...)
	var outs []*transport.Stream
	for _, out := range conns {
		s, err := out.OpenStream(ctx)
		if err != nil {
			b.Fatalf("open stream: %v", err)
		}
		if _, err := s.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		outs = append(outs, s)
	}
	var pipes []pipe
	for i := range conns {
		in, err := tb.Accept(ctx)
		if err != nil {
			b.Fatalf("accept: %v", err)
		}
		all = append(all, in)
		rs, err := in.AcceptStream(ctx)
		if err != nil {
			b.Fatalf("accept stream: %v", err)
		}
		var one [1]byte
		if _, err := io.ReadFull(rs, one[:]); err != nil {
			b.Fatal(err)
		}
		pipes = append(pipes, pipe{w: outs[i], r: rs})
	}
	return pipes, func() {
		for _, c := range all {
			c.Close()
		}
	}
}

// quicPipes connects A to B with n QUIC connections of peersync's
// transport (one UDP socket, one quic.Transport, per side).
func quicPipes(b *testing.B, w *Wire, n int) ([]pipe, func()) {
	ta, tb, idB := benchTransports(b, w, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conns []*transport.Conn
	addr := tb.LocalAddr().String()
	for range n {
		c, err := ta.Dial(ctx, addr, idB)
		if err != nil {
			b.Fatalf("dial %s: %v", addr, err)
		}
		conns = append(conns, c)
	}
	if p := conns[0].Path(); p != "" {
		b.Logf("path %q", p)
	}
	return connPipes(b, tb, conns)
}
