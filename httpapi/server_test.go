package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// TestAuth: the key is required (401, either header works), a foreign
// Host is refused (403) even with the key, and no response sets a cookie.
func TestAuth(t *testing.T) {
	f := newFixture(t, Options{LANName: "laptop"})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(f.url, "http://"))
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"X-API-Key", nil, http.StatusOK},
		{"bearer", []string{"X-API-Key", "", "Authorization", "Bearer " + f.client.Key}, http.StatusOK},
		{"no key", []string{"X-API-Key", ""}, http.StatusUnauthorized},
		{"wrong key", []string{"X-API-Key", f.client.Key + "x"}, http.StatusUnauthorized},
		{"prefix of the key", []string{"X-API-Key", f.client.Key[:10]}, http.StatusUnauthorized},
		{"wrong bearer", []string{"X-API-Key", "", "Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"basic auth", []string{"X-API-Key", "", "Authorization", "Basic " + f.client.Key}, http.StatusUnauthorized},
		{"rebinding host", []string{"Host", "evil.example:" + port}, http.StatusForbidden},
		{"other .local", []string{"Host", "evil.local:" + port}, http.StatusForbidden},
		{"rebinding host without key", []string{"Host", "evil.example:" + port, "X-API-Key", ""}, http.StatusForbidden},
		{"lan name", []string{"Host", "laptop.local:" + port}, http.StatusOK},
		{"localhost", []string{"Host", "localhost:" + port}, http.StatusOK},
		{"other port", []string{"Host", "127.0.0.1:1"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := f.do(t, "GET", "/rest/status", "", tt.hdr...)
			assert.Equal(t, tt.want, res.StatusCode, body)
			assert.Empty(t, res.Header.Values("Set-Cookie"))
			if tt.want != http.StatusOK {
				errorText(t, body)
			}
			if tt.want == http.StatusUnauthorized {
				assert.NotEmpty(t, res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// An empty configured key refuses everything.
	empty := New(f.e, Options{})
	defer empty.Close()
	req, _ := http.NewRequest("GET", "http://127.0.0.1/rest/status", nil)
	assert.False(t, empty.keyOK(req))
	req.Header.Set("X-API-Key", "")
	assert.False(t, empty.keyOK(req))
}

// TestStatusIsEngineStatus: /rest/status is sync.Status as JSON.
func TestStatusIsEngineStatus(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	require.NoError(t, f.e.SetName("laptop"))
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir})
	require.NoError(t, err)
	st, err := f.client.Status(ctx)
	require.NoError(t, err)
	want := f.e.Status()
	assert.Equal(t, want.Device, st.Device)
	assert.Equal(t, "laptop", st.Name)
	require.Len(t, st.Folders, 1)
	assert.Equal(t, want.Folders[0].FolderConfig, st.Folders[0].FolderConfig)
	res, body := f.do(t, "GET", "/rest/status", "")
	assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"))
	assert.Contains(t, body, `"Peers": []`, "an empty list, not null")
}

// TestDevice: the device's ID, name and public-key line; PATCH renames.
func TestDevice(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	d, err := f.client.Device(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.e.DeviceID(), d.Device)
	assert.Equal(t, crypto.AuthorizedKey(f.e.DeviceID()), d.PubKey)
	parsed, err := crypto.ParsePeer(d.PubKey)
	require.NoError(t, err)
	assert.Equal(t, d.Device, parsed)
	require.NoError(t, f.client.SetName(ctx, "desk"))
	assert.Equal(t, "desk", f.e.Name())
	res, body := f.do(t, "PATCH", "/rest/device", `{"nmae":"typo"}`)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Contains(t, errorText(t, body), "nmae")
	assert.Equal(t, "desk", f.e.Name(), "nothing changed")
}

// TestFolderHistoryRestore: share, scan, history and restore through the
// API, checked on disk and against the engine.
func TestFolderHistoryRestore(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	res, body := f.do(t, "POST", "/rest/folders", fmt.Sprintf(`{"id":"docs","path":%q}`, dir))
	require.Equal(t, http.StatusCreated, res.StatusCode, body)
	var fs sync.FolderStatus
	require.NoError(t, json.Unmarshal([]byte(body), &fs))
	assert.Equal(t, "docs", fs.ID)

	folders := []sync.FolderStatus{}
	require.NoError(t, f.client.Do(ctx, "GET", "/rest/folders", nil, &folders))
	require.Len(t, folders, 1)
	assert.Equal(t, dir, resolved(folders[0].Path, dir))

	file := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(file, []byte("one"), 0o644))
	first, err := f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	require.Len(t, first, 1)
	assert.Equal(t, "notes.txt", first[0].Path)
	require.NoError(t, os.WriteFile(file, []byte("two"), 0o644))
	second, err := f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	require.Len(t, second, 1)

	hist, err := f.client.History(ctx, "docs", "notes.txt", 0)
	require.NoError(t, err)
	want, err := f.e.History(ctx, "docs", "notes.txt", 0)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	for i := range want {
		assert.Equal(t, want[i].Commit, hist[i].Commit)
		assert.Equal(t, want[i].Action, hist[i].Action)
	}
	one, err := f.client.History(ctx, "docs", "", 1)
	require.NoError(t, err)
	assert.Len(t, one, 1)

	restored, err := f.client.Restore(ctx, "docs", "notes.txt", first[0].Commit)
	require.NoError(t, err)
	require.Len(t, restored, 1)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "one", string(b))
	again, err := f.client.Restore(ctx, "docs", "notes.txt", first[0].Commit)
	require.NoError(t, err)
	assert.Empty(t, again, "already that content: no commit")

	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/rest/folders", fmt.Sprintf(`{"id":"gone","path":%q}`, filepath.Join(dir, "missing")), http.StatusBadRequest},
		{"POST", "/rest/folders", `{"id":"bad id!","path":"/tmp"}`, http.StatusBadRequest},
		{"POST", "/rest/folders", `{"id":"x"}`, http.StatusBadRequest},
		{"POST", "/rest/folders", `{"id":"x","path":"/tmp","color":"red"}`, http.StatusBadRequest},
		{"POST", "/rest/folders", `not json`, http.StatusBadRequest},
		{"POST", "/rest/folders/nope/scan", "", http.StatusNotFound},
		{"GET", "/rest/folders/nope/history", "", http.StatusNotFound},
		{"GET", "/rest/folders/docs/history?limit=-1", "", http.StatusBadRequest},
		{"POST", "/rest/folders/nope/restore", fmt.Sprintf(`{"path":"notes.txt","rev":%q}`, first[0].Commit), http.StatusNotFound},
		{"POST", "/rest/folders/docs/restore", `{"path":"notes.txt","rev":"zz"}`, http.StatusBadRequest},
		{"GET", "/rest/nothing", "", http.StatusNotFound},
		{"DELETE", "/rest/status", "", http.StatusMethodNotAllowed},
	} {
		res, body := f.do(t, tt.method, tt.path, tt.body)
		assert.Equal(t, tt.want, res.StatusCode, "%s %s: %s", tt.method, tt.path, body)
		errorText(t, body)
	}
	assert.Len(t, f.e.Status().Folders, 1, "no bad request added a folder")
}

// resolved returns got if it names the same directory as want (a temp
// directory may be reached through a symlink), else got unchanged.
func resolved(got, want string) string {
	a, errA := filepath.EvalSymlinks(got)
	b, errB := filepath.EvalSymlinks(want)
	if errA == nil && errB == nil && a == b {
		return want
	}
	return got
}

// TestMassDeleteGuard: a scan the guard refuses is a 409 that says how to
// confirm; allow-mass-delete=true confirms it.
func TestMassDeleteGuard(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir})
	require.NoError(t, err)
	for i := range 120 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), []byte("x"), 0o644))
	}
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	for i := range 120 {
		require.NoError(t, os.Remove(filepath.Join(dir, fmt.Sprintf("f%03d", i))))
	}
	_, err = f.client.Scan(ctx, "docs", false)
	var se *StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, http.StatusConflict, se.Code, "%v", err)
	assert.Len(t, f.e.Status().Folders, 1)
	deleted, err := f.client.Scan(ctx, "docs", true)
	require.NoError(t, err)
	assert.Len(t, deleted, 120)
}

// TestPeers: PUT adds or replaces a peer, DELETE removes it; unknown and
// malformed devices are 404 and 400.
func TestPeers(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	other, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	d := other.DeviceID()
	ps, err := f.client.SetPeer(ctx, sync.PeerConfig{Device: d, Name: "laptop", Addrs: []string{"192.0.2.10:44996"}})
	require.NoError(t, err)
	assert.Equal(t, "laptop", ps.Name)
	_, err = f.client.SetPeer(ctx, sync.PeerConfig{Device: d, Name: "desk"})
	require.NoError(t, err)
	var peers []sync.PeerStatus
	require.NoError(t, f.client.Do(ctx, "GET", "/rest/peers", nil, &peers))
	require.Len(t, peers, 1)
	assert.Equal(t, "desk", peers[0].Name)
	assert.Empty(t, peers[0].Addrs, "PUT replaces the whole entry")

	third, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/rest/peers/not-a-device", `{}`, http.StatusBadRequest},
		{"PUT", "/rest/peers/" + d.String(), fmt.Sprintf(`{"device":%q}`, third.DeviceID()), http.StatusBadRequest},
		{"PUT", "/rest/peers/" + d.String(), `{"addrs":["no port"]}`, http.StatusBadRequest},
		{"PUT", "/rest/peers/" + f.e.DeviceID().String(), `{}`, http.StatusBadRequest},
		{"DELETE", "/rest/peers/" + third.DeviceID().String(), "", http.StatusNotFound},
	} {
		res, body := f.do(t, tt.method, tt.path, tt.body)
		assert.Equal(t, tt.want, res.StatusCode, "%s %s %s: %s", tt.method, tt.path, tt.body, body)
		errorText(t, body)
	}
	require.NoError(t, f.client.RemovePeer(ctx, d))
	assert.Empty(t, f.e.Status().Peers)
	err = f.client.RemovePeer(ctx, d)
	var se *StatusError
	require.True(t, errors.As(err, &se))
	assert.Equal(t, http.StatusNotFound, se.Code)
}

// TestEventsFromEngine: the Server reads Engine.Events, streams them with
// IDs, hands them to OnEvent, and a client resumes after Last-Event-ID
// without seeing an event twice.
func TestEventsFromEngine(t *testing.T) {
	got := make(chan sync.Event, 100)
	f := newFixture(t, Options{ConsumeEvents: true, OnEvent: func(ev sync.Event) { got <- ev }})
	ctx := context.Background()
	dir := t.TempDir()
	_, err := f.client.AddFolder(ctx, NewFolder{ID: "docs", Path: dir})
	require.NoError(t, err)
	s := f.follow(t, 0)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644))
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	first := s.next(t, sync.EventLocalChanges)
	assert.Equal(t, "docs", first.Folder)
	require.Len(t, first.Changes, 1)
	assert.Equal(t, "a.txt", first.Changes[0].Path)
	assert.NotZero(t, first.ID)
	for seen := false; !seen; {
		seen = (<-got).Kind == sync.EventLocalChanges // OnEvent sees every event too
	}
	s.stop()

	// Missed while disconnected: the resumed stream starts right after.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.txt"), []byte("b"), 0o644))
	_, err = f.client.Scan(ctx, "docs", false)
	require.NoError(t, err)
	s = f.follow(t, int64(first.ID))
	ev := <-s.events
	assert.Equal(t, first.ID+1, ev.ID)
	assert.Equal(t, sync.EventLocalChanges, ev.Kind)
	assert.Equal(t, "b.txt", ev.Changes[0].Path)

	// The raw stream: id, event and data lines; ?since works like the header.
	res, err := http.NewRequest("GET", f.url+"/rest/events?since="+fmt.Sprint(first.ID-1), nil)
	require.NoError(t, err)
	res.Header.Set("X-API-Key", f.client.Key)
	rctx, cancel := context.WithCancel(ctx)
	resp, err := http.DefaultClient.Do(res.WithContext(rctx))
	require.NoError(t, err)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	buf := make([]byte, 0, 4096)
	for !strings.Contains(string(buf), fmt.Sprintf("id: %d\n", first.ID+1)) {
		chunk := make([]byte, 4096)
		n, err := resp.Body.Read(chunk)
		require.NoError(t, err)
		buf = append(buf, chunk[:n]...)
	}
	cancel()
	resp.Body.Close()
	assert.Contains(t, string(buf), fmt.Sprintf("id: %d\nevent: local-changes\ndata: {", first.ID))
}

// TestEventRing: the ring is bounded; a client asking for events it no
// longer holds gets a gap with the count first, then what is held; an ID
// from before a restart gets a gap of unknown size.
func TestEventRing(t *testing.T) {
	f := newFixture(t, Options{RingSize: 3})
	for i := range 5 {
		f.api.Publish(sync.Event{Kind: sync.EventError, Folder: fmt.Sprint(i)})
	}
	s := f.follow(t, 1)
	gap := <-s.events
	assert.Equal(t, EventGap, gap.Kind)
	assert.Equal(t, uint64(1), gap.Missed, "event 2 is gone")
	for _, want := range []uint64{3, 4, 5} {
		ev := <-s.events
		assert.Equal(t, want, ev.ID)
		assert.Equal(t, fmt.Sprint(want-1), ev.Folder)
	}
	f.api.Publish(sync.Event{Kind: sync.EventFolderStopped, Err: errors.New("disk gone")})
	ev := s.next(t, sync.EventFolderStopped)
	assert.Equal(t, uint64(6), ev.ID)
	assert.Equal(t, "disk gone", ev.Err)
	s.stop()

	s = f.follow(t, 1000)
	gap = <-s.events
	assert.Equal(t, EventGap, gap.Kind)
	assert.Zero(t, gap.Missed, "unknown")
	assert.Equal(t, uint64(4), (<-s.events).ID)

	res, body := f.do(t, "GET", "/rest/events?since=x", "")
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	errorText(t, body)
}

// TestCloseEndsStreams: Close ends open event streams, so the HTTP
// server's Shutdown does not wait for them (the fixture's cleanup checks
// Shutdown returns without error).
func TestCloseEndsStreams(t *testing.T) {
	f := newFixture(t, Options{})
	f.api.Publish(sync.Event{Kind: sync.EventError})
	s := f.follow(t, 0)
	<-s.events
	require.NoError(t, f.api.Close())
	assert.ErrorIs(t, <-s.done, io.EOF)
	s.done <- io.EOF
}

// TestLoadOrCreateKey: the key is created once, 0600, one line; a key
// readable by others, or empty, is refused.
func TestLoadOrCreateKey(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	key, err := LoadOrCreateKey(home)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(key), 40)
	again, err := LoadOrCreateKey(home)
	require.NoError(t, err)
	assert.Equal(t, key, again)
	b, err := os.ReadFile(filepath.Join(home, KeyFile))
	require.NoError(t, err)
	assert.Equal(t, key+"\n", string(b))
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(filepath.Join(home, KeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.NoError(t, os.Chmod(filepath.Join(home, KeyFile), 0o644))
	_, err = LoadOrCreateKey(home)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "chmod 600")
	require.NoError(t, os.WriteFile(filepath.Join(home, KeyFile), []byte("\n"), 0o600))
	require.NoError(t, os.Chmod(filepath.Join(home, KeyFile), 0o600))
	_, err = LoadKey(home)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "empty")
	_, err = LoadKey(t.TempDir())
	assert.ErrorIs(t, err, os.ErrNotExist)
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
	assert.True(t, HostAllowed("localhost:44997", lo, ""))
	assert.False(t, HostAllowed("localhost:44997", &net.UDPAddr{Port: 44997}, ""), "not a TCP listener")
}
