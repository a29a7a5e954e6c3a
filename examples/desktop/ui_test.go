package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// TestStatusUI: the web UI serves the status page and its JSON.
func TestStatusUI(t *testing.T) {
	home := t.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	require.NoError(t, err)
	defer e.Close()
	require.NoError(t, e.SetName("laptop"))
	require.NoError(t, e.AddFolder(context.Background(), sync.FolderConfig{ID: "docs", Path: t.TempDir()}))

	stop, addr, err := serveUI(context.Background(), "127.0.0.1:0", "laptop", e, nil)
	require.NoError(t, err)
	defer stop()

	res, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	page := string(body)
	assert.Contains(t, page, "peersync — laptop")
	assert.Contains(t, page, id.DeviceID().String())
	assert.Contains(t, page, "docs")
	assert.Contains(t, page, "No peers yet")

	res, err = http.Get("http://" + addr + "/api/status")
	require.NoError(t, err)
	defer res.Body.Close()
	var st struct {
		Device  string
		Folders []struct{ ID string }
		Peers   []any
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&st))
	assert.Equal(t, id.DeviceID().String(), st.Device)
	require.Len(t, st.Folders, 1)
	assert.Equal(t, "docs", st.Folders[0].ID)
	assert.NotNil(t, st.Peers, "an empty list, not null")
	assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"))
}

// TestUIRefusesForeignHost: a page on another site that rebinds its name to
// 127.0.0.1 cannot read the UI.
func TestUIRefusesForeignHost(t *testing.T) {
	home := t.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	require.NoError(t, err)
	defer e.Close()
	stop, addr, err := serveUI(context.Background(), "127.0.0.1:0", "laptop", e, nil)
	require.NoError(t, err)
	defer stop()
	_, port, _ := strings.Cut(addr, ":")
	for host, want := range map[string]int{
		"evil.example:" + port: http.StatusMisdirectedRequest,
		"evil.local:" + port:   http.StatusMisdirectedRequest,
		"laptop.local:" + port: http.StatusOK,
		"localhost:" + port:    http.StatusOK,
		addr:                   http.StatusOK,
	} {
		req, err := http.NewRequest("GET", "http://"+addr+"/api/status", nil)
		require.NoError(t, err)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, want, res.StatusCode, host)
	}
}

func TestHostAllowed(t *testing.T) {
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 44997}
	lan := &net.TCPAddr{IP: net.ParseIP("192.168.1.20"), Port: 44997}
	wild := &net.TCPAddr{IP: net.IPv4zero, Port: 44997}
	local := func(ip net.IP) bool { return ip.Equal(net.ParseIP("192.168.1.20")) || ip.IsLoopback() }
	tests := []struct {
		host    string
		bound   *net.TCPAddr
		lanName string
		want    bool
	}{
		{"localhost:44997", lo, "", true},
		{"LOCALHOST:44997", lo, "", true},
		{"127.0.0.1:44997", lo, "", true},
		{"[::1]:44997", lo, "", true},
		{"127.0.0.1:8080", lo, "", false}, // another port
		{"127.0.0.1", lo, "", false},      // port 80
		{"evil.example:44997", lo, "", false},
		{"evil.local:44997", lo, "laptop", false}, // any other .local name: DNS rebinding through mDNS
		{"laptop.local:44997", lo, "", false},     // no --lan-name
		{"laptop.local:44997", lan, "laptop", true},
		{"Laptop.Local.:44997", lan, "laptop", true},
		{"laptop.local:44997", lan, "laptop.local", true},
		{"192.168.1.20:44997", lan, "laptop", true},
		{"192.168.1.21:44997", lan, "laptop", false}, // a private address, not ours
		{"10.0.0.1:44997", lan, "", false},
		{"192.168.1.20:44997", wild, "", true}, // wildcard: this machine's addresses
		{"192.168.1.21:44997", wild, "", false},
		{"laptopXlocal:44997", lan, "laptop", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hostAllowed(tt.host, tt.bound, tt.lanName, local), "%s (bound %s, lan name %q)", tt.host, tt.bound, tt.lanName)
	}
}
