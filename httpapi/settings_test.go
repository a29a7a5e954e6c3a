package httpapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/sync"
)

// TestSettingsRoundTrip: PUT /rest/settings saves the settings in
// config.json and GET answers them, the TURN password never; a listen
// address other than the running one answers restartNeeded.
func TestSettingsRoundTrip(t *testing.T) {
	f := newFixture(t, Options{})
	f.run(t)
	ctx := context.Background()
	got, err := f.client.Settings(ctx)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:0", got.ListenAddr)
	assert.False(t, got.RestartNeeded)

	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := c.LocalAddr().String()
	require.NoError(t, c.Close())
	in := sync.Settings{ListenAddr: addr, Discovery: false, RendezvousAddr: "rv.example:44996",
		STUN: []string{"stun.example:3478"}, TURN: []sync.TURNSetting{{Addr: "turn.example:3478", User: "ann", Pass: "pw-never-shown"}}}
	out, err := f.client.SetSettings(ctx, in)
	require.NoError(t, err)
	assert.True(t, out.RestartNeeded, "Run listens on the old address")
	assert.Equal(t, addr, out.ListenAddr)
	assert.Equal(t, []sync.TURNSetting{{Addr: "turn.example:3478", User: "ann", HasPass: true}}, out.TURN)

	res, body := f.do(t, "GET", "/rest/settings", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.NotContains(t, body, "pw-never-shown", "the password is write-only")
	assert.Contains(t, body, `"hasPass": true`)
	conf, err := os.ReadFile(filepath.Join(f.home, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(conf), `"listenAddr": "`+addr+`"`, "saved")

	// Sent back as read (no password): the password stays.
	res, body = f.do(t, "PUT", "/rest/settings", mustJSON(t, out.Settings))
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	conf, err = os.ReadFile(filepath.Join(f.home, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(conf), "pw-never-shown")
}

// TestSettingsBadField: a value that is not valid is a 400 naming the
// field; a body that is not the settings is a 400 with no field; nothing
// is saved.
func TestSettingsBadField(t *testing.T) {
	f := newFixture(t, Options{})
	for _, c := range []struct{ body, field string }{
		{`{"listenAddr":"127.0.0.1"}`, "listenAddr"},
		{`{"listenAddr":":1","rendezvousAddr":"x:1","rendezvousDevice":"NOT-AN-ID"}`, "rendezvousDevice"},
		{`{"listenAddr":":1","stun":["nohost"]}`, "stun"},
		{`{"listenAddr":":1","turn":[{"addr":"t:3478","user":"u"}]}`, "turn"},
		{`{"listenAddr":":1","typo":true}`, ""},
	} {
		res, body := f.do(t, "PUT", "/rest/settings", c.body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
		var e SettingsError
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		assert.Equal(t, c.field, e.Field, body)
		assert.NotEmpty(t, e.Error)
	}
	got, err := f.client.Settings(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:0", got.ListenAddr, "nothing saved")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
