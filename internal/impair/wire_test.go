//go:build linux

package impair

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peersync/peersync/internal/netns"
)

// udpIn opens a UDP socket at addr:port inside ns.
func udpIn(t testing.TB, ns *netns.NS, addr netip.Addr, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
		if err == nil {
			_ = c.SetReadBuffer(8 << 20)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listenTCP listens on addr:0 inside ns.
func listenTCP(t testing.TB, ns *netns.NS, addr netip.Addr) net.Listener {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr.String(), "0"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialTCP dials addr from inside ns.
func dialTCP(t testing.TB, ns *netns.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo answers every datagram on c with itself until c is closed.
func echo(c *net.UDPConn, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}

func TestWireRTT(t *testing.T) {
	const delay = 20 * time.Millisecond
	rtts := echoRTTs(t, delay, 20)
	t.Logf("RTT over 20 UDP echoes, one-way delay %v: min %v, median %v, max %v", delay, rtts[0], rtts[10], rtts[19])
	if rtts[0] < 2*delay {
		t.Errorf("min RTT %v is below 2×delay %v", rtts[0], 2*delay)
	}
	// How little the forwarder adds on top is a performance figure:
	// BenchmarkWireRTT reports it.
}

// BenchmarkWireRTT reports the median RTT of UDP echoes across a wire with
// 20 ms each way, and what the forwarder adds on top of the 40 ms
// (rtt-excess-ms; about 1 ms on an idle machine).
func BenchmarkWireRTT(b *testing.B) {
	const delay = 20 * time.Millisecond
	var excess time.Duration
	for b.Loop() {
		rtts := echoRTTs(b, delay, 21)
		excess += rtts[10] - 2*delay
	}
	b.ReportMetric(float64(excess.Microseconds())/1000/float64(b.N), "rtt-excess-ms")
}

// echoRTTs sends n UDP echoes from A to B across a new wire with delay each
// way and returns their round-trip times, sorted.
func echoRTTs(t testing.TB, delay time.Duration, n int) []time.Duration {
	w := New(t, Config{Delay: delay})
	srv := udpIn(t, w.B, AddrB, 7)
	var wg sync.WaitGroup
	wg.Add(1)
	go echo(srv, &wg)
	defer func() { srv.Close(); wg.Wait() }()
	cli := udpIn(t, w.A, AddrA, 0)
	to := netip.AddrPortFrom(AddrB, 7)
	var rtts []time.Duration
	buf := make([]byte, 64)
	for i := range n {
		msg := []byte("ping " + strconv.Itoa(i))
		start := time.Now()
		if _, err := cli.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		_ = cli.SetReadDeadline(time.Now().Add(2 * time.Second)) // bounds a lost echo
		m, _, err := cli.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		rtts = append(rtts, time.Since(start))
		if !bytes.Equal(buf[:m], msg) {
			t.Fatalf("echo %q, sent %q", buf[:m], msg)
		}
	}
	slices.Sort(rtts)
	return rtts
}

func TestWireLoss(t *testing.T) {
	const (
		n    = 4000
		loss = 0.1
	)
	w := New(t, Config{Delay: time.Millisecond, Loss: loss, Reverse: &Link{Delay: time.Millisecond}})
	srv := udpIn(t, w.B, AddrB, 9)
	cli := udpIn(t, w.A, AddrA, 0)
	to := netip.AddrPortFrom(AddrB, 9)
	received := make(chan int, 1)
	go func() {
		buf := make([]byte, 2048)
		got := 0
		for {
			_ = srv.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := srv.ReadFromUDPAddrPort(buf); err != nil {
				received <- got
				return
			}
			got++
		}
	}()
	payload := make([]byte, 1000)
	for i := range n {
		if _, err := cli.WriteToUDPAddrPort(payload, to); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // gently: no queue on the way may overflow
		}
	}
	got := <-received
	ab, ba := w.Stats()
	lost := 1 - float64(got)/n
	tol := 5 * math.Sqrt(loss*(1-loss)/n)
	t.Logf("sent %d datagrams A→B at %v loss: %d arrived, lost %.4f (tolerance ±%.4f); A→B %+v; B→A %+v", n, loss, got, lost, tol, ab, ba)
	if math.Abs(lost-loss) > tol {
		t.Errorf("lost %.4f of datagrams, configured %v", lost, loss)
	}
	if ab.KernelDrops != 0 || ab.Overflow != 0 || ab.SendDrops != 0 {
		t.Errorf("unplanned drops: %+v", ab)
	}
	if ba.Lost != 0 {
		t.Errorf("B→A lost %d frames with no loss configured", ba.Lost)
	}
}

// transferTCP sends size random bytes from A to B over TCP and checks they
// arrive intact; it returns the rate in MiB/s.
func transferTCP(t *testing.T, w *Wire, size int) float64 {
	t.Helper()
	ln := listenTCP(t, w.B, AddrB)
	data := make([]byte, size)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		res <- r
	}()
	start := time.Now()
	c := dialTCP(t, w.A, ln.Addr().String())
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(60 * time.Second): // bounds a hang; the time is measured below
		t.Fatal("transfer did not finish in 60 s")
	}
	took := time.Since(start)
	if r.err != nil && !errors.Is(r.err, io.EOF) {
		t.Fatal(r.err)
	}
	if r.n != int64(size) || r.sum != want {
		t.Fatalf("received %d bytes (sha256 %x), sent %d (%x)", r.n, r.sum[:6], size, want[:6])
	}
	return float64(size) / (1 << 20) / took.Seconds()
}

func TestWireTCPIntact(t *testing.T) {
	w := New(t, Config{Delay: 2 * time.Millisecond})
	rate := transferTCP(t, w, 64<<20)
	ab, ba := w.Stats()
	t.Logf("64 MiB over TCP, 2 ms each way, no loss: %.0f MiB/s; A→B %+v; B→A %+v", rate, ab, ba)
	if ab.GSOFrames+ba.GSOFrames+ab.Truncated+ba.Truncated != 0 {
		t.Errorf("offload superframes reached the forwarder: A→B %+v, B→A %+v", ab, ba)
	}
	if ab.Lost+ba.Lost != 0 {
		t.Errorf("frames lost with no loss configured")
	}
}

func TestWireTCPIntactUnderLoss(t *testing.T) {
	w := New(t, Config{Delay: 5 * time.Millisecond, Loss: 0.02})
	rate := transferTCP(t, w, 8<<20)
	ab, ba := w.Stats()
	t.Logf("8 MiB over TCP, 5 ms each way, 2%% loss: %.1f MiB/s; A→B %+v; B→A %+v", rate, ab, ba)
	if ab.Lost == 0 {
		t.Error("no frame lost at 2% loss")
	}
}

func TestWireOffloadsOff(t *testing.T) {
	w := New(t, Config{})
	for _, c := range []struct {
		ns     *netns.NS
		ifname string
	}{{w.A, "eth0"}, {w.B, "eth0"}, {w.Middle, "la"}, {w.Middle, "lb"}} {
		var on []string
		if err := c.ns.Do(func() (err error) { on, err = activeFeatures(c.ifname); return err }); err != nil {
			t.Fatal(err)
		}
		for _, f := range on {
			if offloadOff(f) {
				t.Errorf("%s: %s still on", c.ifname, f)
			}
		}
		if !slices.Contains(on, "tx-checksum-ip-generic") {
			t.Logf("%s: checksum offload is off (%v); fine, but slower", c.ifname, on)
		}
	}
}

func TestWireCleansUp(t *testing.T) {
	requireRoot(t)
	var names []string
	t.Run("wire", func(t *testing.T) {
		w := New(t, Config{Delay: time.Millisecond, Loss: 0.01})
		names = []string{w.A.Name, w.B.Name, w.Middle.Name}
		transferTCP(t, w, 1<<20)
	})
	goleak.VerifyNone(t) // the wire's goroutines ended with its cleanup

	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(string(out), n) {
			t.Errorf("namespace %s left behind", n)
		}
	}
}

func TestWireSet(t *testing.T) {
	w := New(t, Config{})
	srv := udpIn(t, w.B, AddrB, 9)
	cli := udpIn(t, w.A, AddrA, 0)
	to := netip.AddrPortFrom(AddrB, 9)
	buf := make([]byte, 64)
	arrives := func() bool {
		if _, err := cli.WriteToUDPAddrPort([]byte("x"), to); err != nil {
			t.Fatal(err)
		}
		_ = srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _, err := srv.ReadFromUDPAddrPort(buf)
		return err == nil
	}
	if !arrives() {
		t.Fatal("datagram lost on a wire without loss")
	}
	w.Set(Link{Loss: 1}, Link{})
	for i := range 5 {
		if arrives() {
			t.Fatalf("datagram %d arrived with loss 1", i)
		}
	}
	w.Set(Link{Delay: 50 * time.Millisecond}, Link{})
	start := time.Now()
	if !arrives() {
		t.Fatal("datagram lost after loss went back to 0")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("arrived after %v with a 50 ms delay", d)
	}
}
