//go:build linux

package netns_test

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/netns"
)

func TestBridgeTwoNamespaces(t *testing.T) {
	netns.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lan := netns.NewBridge(t)
	a, b := netns.New(t), netns.New(t)
	require.NotEqual(t, a.Name, b.Name)
	addrA := lan.Attach(t, a, "eth0", netip.MustParsePrefix("10.77.0.1/24"))
	lan.Attach(t, b, "eth0", netip.MustParsePrefix("10.77.0.2/24"))

	out, err := a.Output(ctx, nil, "ip", "-4", "addr", "show", "dev", "eth0")
	require.NoError(t, err)
	assert.Contains(t, out, "10.77.0.1/24")
	out, err = a.Output(ctx, nil, "ip", "route", "show")
	require.NoError(t, err)
	assert.Contains(t, out, "224.0.0.0/4 dev eth0")

	// A UDP socket opened in a by Do, a packet sent from b by Do.
	var pc net.PacketConn
	require.NoError(t, a.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addrA.String()+":9999")
		return err
	}))
	defer pc.Close()
	require.NoError(t, b.Do(func() error {
		c, err := net.Dial("udp4", addrA.String()+":9999")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	}))
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 16)
	n, from, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf[:n]))
	assert.True(t, strings.HasPrefix(from.String(), "10.77.0.2:"), from.String())

	// Do leaves the calling goroutine's namespace alone: the host has no
	// address 10.77.0.1.
	host, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, h := range host {
		assert.NotContains(t, h.String(), "10.77.0.1")
	}
}

func TestStartEnvAndOutput(t *testing.T) {
	netns.Require(t)
	ns := netns.New(t)
	p := ns.Start(t, []string{"NETNS_TEST_VAR=marker42"}, "sh", "-c", `echo "var=$NETNS_TEST_VAR"; ip -o link show | wc -l; exec sleep 60`)
	require.True(t, p.WaitOutput("var=marker42", 10*time.Second), p.Output())
	// Only lo in a fresh namespace.
	require.True(t, p.WaitOutput("\n1\n", 10*time.Second), p.Output())
	select {
	case <-p.Done():
		t.Fatalf("exited early: %v", p.Err())
	default:
	}
}

func TestCleanupDeletesEverything(t *testing.T) {
	netns.Require(t)
	var names []string
	t.Run("inner", func(t *testing.T) {
		lan := netns.NewBridge(t)
		ns := netns.New(t)
		lan.Attach(t, ns, "eth0", netip.MustParsePrefix("10.78.0.1/24"))
		ns.Start(t, nil, "sleep", "60")
		names = append(names, lan.NS.Name, ns.Name)
	})
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	for _, n := range names {
		assert.NotContains(t, strings.Fields(string(out)), n)
	}
}

func TestOutputError(t *testing.T) {
	netns.Require(t)
	ns := netns.New(t)
	_, err := ns.Output(context.Background(), nil, "sh", "-c", "echo oops >&2; exit 3")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "oops")
	assert.Contains(t, err.Error(), ns.Name)
}

func TestRouterForwards(t *testing.T) {
	netns.Require(t)
	a, r, b := netns.New(t), netns.New(t), netns.New(t)
	netns.Link(t, a, "eth0", netip.MustParsePrefix("10.79.1.2/24"), r, "lan", netip.MustParsePrefix("10.79.1.1/24"))
	netns.Link(t, r, "wan", netip.MustParsePrefix("10.79.2.1/24"), b, "eth0", netip.MustParsePrefix("10.79.2.2/24"))
	require.NoError(t, r.Sysctl("net.ipv4.ip_forward", "1"))
	a.MustIP(t, "route", "add", "default", "via", "10.79.1.1")
	b.MustIP(t, "route", "add", "default", "via", "10.79.2.1")
	var ln net.Listener
	require.NoError(t, b.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", "10.79.2.2:0")
		return err
	}))
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("routed"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A command in a: bash's /dev/tcp is not everywhere; use Go via Do.
	var got string
	require.NoError(t, a.Do(func() error {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 16)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(buf)
		got = string(buf[:n])
		return nil
	}))
	assert.Equal(t, "routed", got)
}
