package sync

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRouteOf(t *testing.T) {
	for addr, want := range map[net.Addr]string{
		&net.UDPAddr{IP: net.ParseIP("192.168.1.20"), Port: 44996}:  "lan",
		&net.TCPAddr{IP: net.ParseIP("10.0.0.3"), Port: 44996}:      "lan",
		&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}:         "lan",
		&net.UDPAddr{IP: net.ParseIP("fe80::1"), Port: 1}:           "lan",
		&net.UDPAddr{IP: net.ParseIP("fd00::1"), Port: 1}:           "lan",
		&net.TCPAddr{IP: net.ParseIP("::ffff:172.16.0.9"), Port: 1}: "lan",
		&net.UDPAddr{IP: net.ParseIP("203.0.113.7"), Port: 44996}:   "public",
		&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 44996}:   "public",
	} {
		assert.Equal(t, want, routeOf(addr), addr.String())
	}
	assert.Equal(t, "public", routeOf(nil))
}

func TestPrintable(t *testing.T) {
	assert.Equal(t, "laptop[2Jevil", printable("laptop\n\x1b[2Jevil\x00"))
	assert.Equal(t, "Fotos 2026 – Été", printable("Fotos 2026 – Été"))
	assert.Equal(t, "ab", printable("a\xffb"))
}
