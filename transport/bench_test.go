package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"

	"github.com/peersync/peersync/internal/testutil"
)

// throughputSize is what each measurement of BenchmarkThroughput moves:
// 256 MiB, or PEERSYNC_BENCH_MIB MiB (for slow, lossy links).
var throughputSize = func() int {
	if mib, err := strconv.Atoi(os.Getenv("PEERSYNC_BENCH_MIB")); err == nil && mib > 0 {
		return mib << 20
	}
	return 256 << 20
}()

// BenchmarkThroughput moves 256 MiB on one stream over (a) plain quic-go
// between two UDP sockets (4 MiB buffers, default quic.Config: the
// reference), (b) an ICE-established Conn of ours (QUIC on the socket it
// shares with ICE, consent checks running) and (c) a DialTCP Conn of ours
// (TLS 1.3 over TCP with BBR where available, yamux streams), taking turns
// in each iteration, and reports the rates and their ratios to (a) (target
// for ICE ≥ 0.8). PEERSYNC_BENCH_MIB=n moves n MiB instead of 256:
//
//	go test ./transport/ -run '^$' -bench Throughput -benchtime 3x
func BenchmarkThroughput(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	aID, bID := newIdentity(b), newIdentity(b)

	// (a) plain quic-go.
	plainOut, plainIn := plainQUICPair(b, ctx, aID, bID)

	// (b) ours, through ICE.
	cfg := func(id *crypto.Identity, peer *crypto.Identity) Config {
		return Config{Identity: id, ListenAddr: "127.0.0.1:0", Authorize: allow(peer)}
	}
	ta, err := New(cfg(aID, bID))
	require.NoError(b, err)
	defer ta.Close()
	tb, err := New(cfg(bID, aID))
	require.NoError(b, err)
	defer tb.Close()
	sig := newMemSignal(aID, bID)
	accepted := answerOne(ctx, tb, sig.endpoint(bID, bID), ICEConfig{})
	iceOut, err := ta.DialICE(ctx, bID.DeviceID(), sig.endpoint(aID, aID), ICEConfig{})
	require.NoError(b, err)
	r := <-accepted
	require.NoError(b, r.err)
	iceIn := r.c
	require.Equal(b, PathICEHost, iceOut.Path())

	// (c) ours, over TCP.
	tcpAccepted := make(chan *Conn, 1)
	go func() {
		c, _ := tb.Accept(ctx)
		tcpAccepted <- c
	}()
	tcpOut, err := ta.DialTCP(ctx, tb.TCPAddr().String(), bID.DeviceID())
	require.NoError(b, err)
	tcpIn := <-tcpAccepted
	require.NotNil(b, tcpIn)
	require.Equal(b, PathTCP, tcpIn.Path())

	var plainTime, iceTime, tcpTime time.Duration
	// CPU time of the process (both ends) per transfer: it varies much
	// less with the machine's load than the wall time does.
	var plainCPU, iceCPU, tcpCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := testutil.ProcessCPU()
		plainTime += timeTransfer(b, ctx,
			func() (io.WriteCloser, error) { return plainOut.OpenStreamSync(ctx) },
			func() (io.Reader, error) { return plainIn.AcceptStream(ctx) })
		c1 := testutil.ProcessCPU()
		iceTime += timeTransfer(b, ctx,
			func() (io.WriteCloser, error) { return iceOut.OpenStream(ctx) },
			func() (io.Reader, error) { return iceIn.AcceptStream(ctx) })
		c2 := testutil.ProcessCPU()
		tcpTime += timeTransfer(b, ctx,
			func() (io.WriteCloser, error) { return tcpOut.OpenStream(ctx) },
			func() (io.Reader, error) { return tcpIn.AcceptStream(ctx) })
		c3 := testutil.ProcessCPU()
		plainCPU, iceCPU, tcpCPU = plainCPU+c1-c0, iceCPU+c2-c1, tcpCPU+c3-c2
	}
	b.StopTimer()
	mib := float64(throughputSize) / (1 << 20) * float64(b.N)
	if plainCPU > 0 {
		b.ReportMetric(float64(plainCPU.Microseconds())/1000/mib, "plain-cpu-ms/MiB")
		b.ReportMetric(float64(iceCPU.Microseconds())/1000/mib, "ice-cpu-ms/MiB")
		b.ReportMetric(float64(tcpCPU.Microseconds())/1000/mib, "tcp-cpu-ms/MiB")
	}
	plainRate := mib / plainTime.Seconds()
	iceRate := mib / iceTime.Seconds()
	b.ReportMetric(plainRate, "plain-MiB/s")
	b.ReportMetric(iceRate, "ice-MiB/s")
	b.ReportMetric(iceRate/plainRate, "ice/plain")
	tcpRate := mib / tcpTime.Seconds()
	b.ReportMetric(tcpRate, "tcp-MiB/s")
	b.ReportMetric(tcpRate/plainRate, "tcp/plain")
	require.Nil(b, tcpOut.Err(), "the TCP connection survived the load")
	require.Nil(b, iceOut.Err(), "the ICE connection survived the load")
	require.Equal(b, "Connected", iceOut.ice.connectionState().String(), "ICE consent survived the load")
}

// timeTransfer sends throughputSize bytes on a new stream and returns the
// time until the receiver has read them all.
func timeTransfer(b *testing.B, ctx context.Context, open func() (io.WriteCloser, error), accept func() (io.Reader, error)) time.Duration {
	b.Helper()
	start := time.Now()
	s, err := open()
	require.NoError(b, err)
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		var err error
		for sent := 0; sent < throughputSize && err == nil; sent += len(buf) {
			_, err = s.Write(buf)
		}
		if err == nil {
			err = s.Close()
		}
		writeErr <- err
	}()
	rs, err := accept()
	require.NoError(b, err)
	n, err := io.Copy(io.Discard, rs)
	require.NoError(b, err)
	require.NoError(b, <-writeErr)
	require.EqualValues(b, throughputSize, n)
	return time.Since(start)
}

// plainQUICPair connects two plain quic-go endpoints on loopback UDP
// sockets with 4 MiB buffers, with default quic.Config and TLS 1.3 with the
// same certificates as ours.
func plainQUICPair(b *testing.B, ctx context.Context, aID, bID *crypto.Identity) (out, in *quic.Conn) {
	b.Helper()
	sock := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(b, err)
		c.SetReadBuffer(socketBufferSize)  //nolint:errcheck // best effort, as in New
		c.SetWriteBuffer(socketBufferSize) //nolint:errcheck // best effort, as in New
		b.Cleanup(func() { c.Close() })
		return c
	}
	tlsConf := func(id *crypto.Identity) *tls.Config {
		cert, err := id.TLSCertificate()
		require.NoError(b, err)
		return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"bench"},
			InsecureSkipVerify: true, ClientAuth: tls.RequireAnyClientCert}
	}
	ta, tb := &quic.Transport{Conn: sock()}, &quic.Transport{Conn: sock()}
	b.Cleanup(func() { ta.Close(); tb.Close() })
	ln, err := tb.Listen(tlsConf(bID), nil)
	require.NoError(b, err)
	b.Cleanup(func() { ln.Close() })
	out, err = ta.Dial(ctx, tb.Conn.LocalAddr(), tlsConf(aID), nil)
	require.NoError(b, err)
	in, err = ln.Accept(ctx)
	require.NoError(b, err)
	b.Cleanup(func() { out.CloseWithError(0, ""); in.CloseWithError(0, "") })
	return out, in
}
