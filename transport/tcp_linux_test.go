//go:build linux

package transport

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// congestionOf reads TCP_CONGESTION back from c.
func congestionOf(t *testing.T, c *net.TCPConn) string {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var name string
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		name, gerr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}))
	require.NoError(t, gerr)
	return strings.TrimRight(name, "\x00")
}

func setCongestionTo(t *testing.T, c *net.TCPConn, name string) {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	}))
	require.NoError(t, serr)
}

func bbrAvailable(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil || !strings.Contains(string(b), "bbr") || !strings.Contains(string(b), "cubic") {
		t.Skipf("kernel offers %q; need bbr and cubic", strings.TrimSpace(string(b)))
	}
}

func tcpConnOf(c *Conn) *net.TCPConn {
	nc := c.l.(*tcpLink).mc.Conn.(*tls.Conn).NetConn()
	if s, ok := nc.(*handshakeSlot); ok { // accepted
		nc = s.Conn
	}
	return nc.(*net.TCPConn)
}

func TestTCPBBR(t *testing.T) {
	bbrAvailable(t)
	ctx := testContext(t)

	// setCongestion changes a socket that uses another algorithm (the
	// system default here may be bbr already).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	setCongestionTo(t, raw.(*net.TCPConn), "cubic")
	require.Equal(t, "cubic", congestionOf(t, raw.(*net.TCPConn)))
	a := newTransport(t, newIdentity(t), allow(), nil)
	tuneTCP(raw, a)
	assert.Equal(t, "bbr", congestionOf(t, raw.(*net.TCPConn)))

	// Both ends of a real connection.
	aID, bID := newIdentity(t), newIdentity(t)
	x := newTransport(t, aID, allow(bID), nil)
	y := newTransport(t, bID, allow(aID), nil)
	out, in := connectTCP(t, ctx, x, y, bID)
	assert.Equal(t, "bbr", congestionOf(t, tcpConnOf(out)), "dialed socket")
	assert.Equal(t, "bbr", congestionOf(t, tcpConnOf(in)), "accepted socket")
	nodelay, err := unixGetInt(tcpConnOf(out), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	require.NoError(t, err)
	assert.Equal(t, 1, nodelay)
}

func unixGetInt(c *net.TCPConn, level, opt int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		return 0, err
	}
	return v, gerr
}
