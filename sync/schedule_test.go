package sync

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"

	"github.com/peersync/peersync/internal/testutil"
)

func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	require.NoError(t, err)
	return tm
}

func TestWindowAcrossMidnight(t *testing.T) {
	loc := time.UTC
	// Friday 2026-12-04 22:00 to Saturday 06:00; only on Fridays.
	w, err := ParseWindow("fri", "22:00", "06:00")
	require.NoError(t, err)
	cases := []struct {
		at   string
		open bool
		next string
	}{
		{"2026-12-04 21:59", false, "2026-12-04 22:00"},
		{"2026-12-04 22:00", true, "2026-12-05 06:00"},
		{"2026-12-04 23:59", true, "2026-12-05 06:00"},
		{"2026-12-05 00:00", true, "2026-12-05 06:00"}, // Saturday, opened Friday
		{"2026-12-05 05:59", true, "2026-12-05 06:00"},
		{"2026-12-05 06:00", false, "2026-12-11 22:00"},
		{"2026-12-05 22:30", false, "2026-12-11 22:00"}, // Saturday evening: no window
		{"2026-12-03 23:00", false, "2026-12-04 22:00"}, // Thursday
	}
	for _, c := range cases {
		tm := at(t, loc, c.at)
		assert.Equal(t, c.open, w.Open(tm), "Open(%s)", c.at)
		assert.Equal(t, at(t, loc, c.next), w.Next(tm), "Next(%s)", c.at)
	}

	// Every day, across midnight.
	daily, err := ParseWindow("", "22:00", "06:00")
	require.NoError(t, err)
	assert.True(t, daily.Open(at(t, loc, "2026-12-06 03:00")))
	assert.False(t, daily.Open(at(t, loc, "2026-12-06 12:00")))
	assert.Equal(t, at(t, loc, "2026-12-06 22:00"), daily.Next(at(t, loc, "2026-12-06 12:00")))

	// A daytime window and a 24-hour one.
	day := Window{From: "09:00", To: "17:00"}
	assert.True(t, day.Open(at(t, loc, "2026-12-06 09:00")))
	assert.False(t, day.Open(at(t, loc, "2026-12-06 17:00")))
	sat := Window{Days: []time.Weekday{time.Saturday}, From: "00:00", To: "00:00"}
	assert.True(t, sat.Open(at(t, loc, "2026-12-05 23:59")))
	assert.False(t, sat.Open(at(t, loc, "2026-12-06 00:00")))

	// Always open: no change ever.
	assert.True(t, Window{}.Open(at(t, loc, "2026-12-06 12:00")))
	assert.True(t, Window{}.Next(at(t, loc, "2026-12-06 12:00")).IsZero())
}

func TestWindowDST(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	w, err := ParseWindow("", "22:00", "06:00")
	require.NoError(t, err)

	// Spring forward: 2026-03-29 02:00 CET becomes 03:00 CEST. The window
	// keeps its wall-clock hours, so it lasts 7 hours that night.
	open := at(t, loc, "2026-03-28 22:00")
	assert.True(t, w.Open(open))
	closeAt := w.Next(open)
	assert.Equal(t, at(t, loc, "2026-03-29 06:00"), closeAt)
	assert.Equal(t, 7*time.Hour, closeAt.Sub(open))
	assert.True(t, w.Open(closeAt.Add(-time.Minute)))
	assert.False(t, w.Open(closeAt))
	assert.True(t, w.Open(at(t, loc, "2026-03-29 03:30"))) // after the jump

	// Fall back: 2026-10-25 03:00 CEST becomes 02:00 CET: 9 hours.
	open = at(t, loc, "2026-10-24 22:00")
	closeAt = w.Next(open)
	assert.Equal(t, at(t, loc, "2026-10-25 06:00"), closeAt)
	assert.Equal(t, 9*time.Hour, closeAt.Sub(open))
	// 02:30 happens twice; the window is open both times.
	first := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC).In(loc) // 02:30 CEST
	second := first.Add(time.Hour)                                  // 02:30 CET
	assert.Equal(t, first.Format("15:04"), second.Format("15:04"))
	assert.True(t, w.Open(first))
	assert.True(t, w.Open(second))

	// A window inside the hour that does not exist that night opens once
	// the clock has jumped, and closes on time.
	gap := Window{From: "02:15", To: "04:00"}
	assert.False(t, gap.Open(at(t, loc, "2026-03-29 01:59")))
	assert.True(t, gap.Open(at(t, loc, "2026-03-29 03:30")))
	assert.False(t, gap.Open(at(t, loc, "2026-03-29 04:00")))
}

func TestWindowJSON(t *testing.T) {
	w := Window{Days: []time.Weekday{time.Monday, time.Tuesday}, From: "22:00", To: "06:00"}
	b, err := json.Marshal(w)
	require.NoError(t, err)
	assert.JSONEq(t, `{"days":["mon","tue"],"from":"22:00","to":"06:00"}`, string(b))
	var back Window
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, w, back)

	require.NoError(t, json.Unmarshal([]byte(`{"from":"08:00","to":"09:30"}`), &back))
	assert.Equal(t, Window{From: "08:00", To: "09:30"}, back)
	require.NoError(t, json.Unmarshal([]byte(`{"days":["Saturday","SUN"],"from":"08:00","to":"09:30"}`), &back))
	assert.Equal(t, []time.Weekday{time.Saturday, time.Sunday}, back.Days)

	for _, bad := range []string{
		`{"from":"25:00","to":"06:00"}`,
		`{"from":"22:00","to":"6:00"}`,
		`{"from":"22:00"}`,
		`{"days":["someday"],"from":"22:00","to":"06:00"}`,
		`{"from":"22:60","to":"06:00"}`,
		`[1,2]`,
	} {
		assert.Error(t, json.Unmarshal([]byte(bad), &back), bad)
	}
	_, err = ParseWindow("mon,xyz", "22:00", "06:00")
	assert.Error(t, err)
	days, err := ParseDays("all")
	require.NoError(t, err)
	assert.Nil(t, days)
	assert.Equal(t, "mon,tue 22:00-06:00", w.String())
	assert.Equal(t, "every day 08:00-09:30", Window{From: "08:00", To: "09:30"}.String())

	var l RateLimit
	require.NoError(t, json.Unmarshal([]byte(`{"up":1000,"down":0}`), &l))
	assert.Equal(t, RateLimit{Up: 1000}, l)
	assert.Error(t, json.Unmarshal([]byte(`{"up":-1}`), &l))
}

func TestScheduleAndLimitsPersist(t *testing.T) {
	n := newNode(t, "a")
	peer := newNode(t, "b")
	require.NoError(t, n.e.AddPeer(PeerConfig{Device: peer.e.DeviceID(), Folders: []string{"docs"}}))

	w := &Window{Days: []time.Weekday{time.Friday}, From: "22:00", To: "06:00"}
	require.NoError(t, n.e.SetSchedule(w))
	w.From = "01:00" // the engine keeps its own copy
	pw := &Window{From: "12:00", To: "13:00"}
	require.NoError(t, n.e.SetPeerSchedule(peer.e.DeviceID(), pw))
	require.NoError(t, n.e.SetLimits(crypto.DeviceID{}, RateLimit{Up: 1 << 20, Down: 2 << 20}))
	require.NoError(t, n.e.SetLimits(peer.e.DeviceID(), RateLimit{Up: 1000}))

	assert.Error(t, n.e.SetPeerSchedule(n.e.DeviceID(), pw), "not a peer")
	assert.Error(t, n.e.SetLimits(n.e.DeviceID(), RateLimit{Up: 1}), "not a peer")
	assert.Error(t, n.e.SetLimits(crypto.DeviceID{}, RateLimit{Up: -1}))
	assert.Error(t, n.e.SetSchedule(&Window{From: "9:00", To: "10:00"}))
	assert.ErrorIs(t, n.e.SyncNow(crypto.DeviceID{}, ""), ErrNotRunning)
	assert.ErrorIs(t, n.e.SyncNow(crypto.DeviceID{}, "nope"), ErrUnknownFolder)

	// A fresh engine on the same home reads them back.
	home := n.e.cfg.Home
	id := n.e.cfg.Identity
	require.NoError(t, n.e.Close())
	e2, err := New(Config{Home: home, Identity: id, Network: NetworkConfig{ListenAddr: "127.0.0.1:0"}})
	require.NoError(t, err)
	defer e2.Close()
	e2.mu.Lock()
	conf := e2.conf.clone()
	e2.mu.Unlock()
	require.NotNil(t, conf.Schedule)
	assert.Equal(t, "fri 22:00-06:00", conf.Schedule.String())
	assert.Equal(t, RateLimit{Up: 1 << 20, Down: 2 << 20}, conf.Limits)
	assert.Equal(t, conf.Schedule, e2.Schedule())
	assert.Equal(t, conf.Limits, e2.Limits())
	p, ok := conf.peer(peer.e.DeviceID())
	require.True(t, ok)
	require.NotNil(t, p.Schedule)
	assert.Equal(t, "every day 12:00-13:00", p.Schedule.String())
	assert.Equal(t, RateLimit{Up: 1000}, p.Limits)

	// nil: back to always and to the global window.
	require.NoError(t, e2.SetPeerSchedule(peer.e.DeviceID(), nil))
	require.NoError(t, e2.SetSchedule(nil))
	e2.mu.Lock()
	p, _ = e2.conf.peer(peer.e.DeviceID())
	assert.Nil(t, e2.conf.Schedule)
	e2.mu.Unlock()
	assert.Nil(t, p.Schedule)
	require.NoError(t, peer.e.Close())
}

// TestPeerScheduleOverridesGlobal: a peer's own window wins over the
// global one, and nil follows it again; status names the state.
func TestPeerScheduleOverridesGlobal(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)) // Friday noon
	a := newNodeCfg(t, "a", func(c *Config) { c.Now = clk.Now })
	t.Cleanup(func() { _ = a.e.Close() })
	b, c := newNode(t, "b"), newNode(t, "c")
	require.NoError(t, b.e.Close())
	require.NoError(t, c.e.Close())
	for _, p := range []*node{b, c} {
		require.NoError(t, a.e.AddPeer(PeerConfig{Device: p.e.DeviceID(), Folders: []string{"docs"}}))
	}
	bID, cID := b.e.DeviceID(), c.e.DeviceID()
	window := func(d crypto.DeviceID) string {
		for _, p := range a.e.Status().Peers {
			if p.Device == d {
				return p.Window
			}
		}
		return ""
	}

	require.NoError(t, a.e.SetSchedule(&Window{From: "22:00", To: "06:00"}))
	require.NoError(t, a.e.SetPeerSchedule(bID, &Window{From: "11:00", To: "13:00"}))
	assert.True(t, a.e.mayExchange(bID, "docs"), "b's own window is open at noon")
	assert.False(t, a.e.mayExchange(cID, "docs"), "c follows the global window")
	assert.Equal(t, "open", window(bID))
	assert.Equal(t, "closed until 22:00", window(cID))

	require.NoError(t, a.e.SetPeerSchedule(bID, &Window{Days: []time.Weekday{time.Monday}, From: "09:00", To: "10:00"}))
	assert.False(t, a.e.mayExchange(bID, "docs"))
	assert.Equal(t, "closed until mon 09:00", window(bID))

	require.NoError(t, a.e.SetPeerSchedule(bID, nil))
	require.NoError(t, a.e.SetSchedule(nil))
	assert.True(t, a.e.mayExchange(bID, "docs"))
	assert.True(t, a.e.mayExchange(cID, "docs"))
	assert.Equal(t, "open", window(cID))
}
