package transport

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSession = "0123456789abcdef0123456789abcdef"
	testPwd     = "abcdefghijklmnopqrstuvwxyzAB"
	hostCand    = "1234567890 1 udp 2130706431 192.0.2.1 44996 typ host"
	srflxCand   = "987654321 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 192.0.2.1 rport 44996"
)

func validSignal() signalMsg {
	return signalMsg{Version: 1, Type: signalOffer, Session: testSession, Ufrag: "abcdEFGH", Pwd: testPwd,
		Candidates: []string{hostCand, srflxCand}}
}

func signalJSON(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	b, err := json.Marshal(validSignal())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	edit(m)
	b, err = json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestParseSignal(t *testing.T) {
	s, err := parseSignal(signalJSON(t, func(map[string]any) {}))
	require.NoError(t, err)
	assert.Equal(t, validSignal(), *s)

	s, err = parseSignal(signalJSON(t, func(m map[string]any) { m["future"] = []int{1}; m["candidates"] = nil }))
	require.NoError(t, err, "unknown fields are ignored; no candidates is allowed")
	assert.Empty(t, s.Candidates)

	manyCands := make([]string, maxSignalCandidates+1)
	for i := range manyCands {
		manyCands[i] = hostCand
	}
	tests := []struct {
		name string
		edit func(m map[string]any)
		raw  string
	}{
		{name: "not JSON", raw: "hello"},
		{name: "trailing data", raw: string(signalJSON(t, func(map[string]any) {})) + "{}"},
		{name: "too large", raw: `{"v":1,"x":"` + strings.Repeat("a", MaxSignalSize) + `"}`},
		{name: "version 2", edit: func(m map[string]any) { m["v"] = 2 }},
		{name: "no version", edit: func(m map[string]any) { delete(m, "v") }},
		{name: "fractional version", edit: func(m map[string]any) { m["v"] = 1.5 }},
		{name: "unknown type", edit: func(m map[string]any) { m["type"] = "candidate" }},
		{name: "short session", edit: func(m map[string]any) { m["session"] = "abc" }},
		{name: "uppercase session", edit: func(m map[string]any) { m["session"] = strings.ToUpper(testSession) }},
		{name: "short ufrag", edit: func(m map[string]any) { m["ufrag"] = "abc" }},
		{name: "ufrag with colon", edit: func(m map[string]any) { m["ufrag"] = "abcd:efgh" }},
		{name: "long ufrag", edit: func(m map[string]any) { m["ufrag"] = strings.Repeat("a", 257) }},
		{name: "short pwd", edit: func(m map[string]any) { m["pwd"] = "abc" }},
		{name: "pwd with space", edit: func(m map[string]any) { m["pwd"] = testPwd + " x" }},
		{name: "too many candidates", edit: func(m map[string]any) { m["candidates"] = manyCands }},
		{name: "garbage candidate", edit: func(m map[string]any) { m["candidates"] = []string{"x"} }},
		{name: "TCP candidate", edit: func(m map[string]any) {
			m["candidates"] = []string{"1 1 tcp 2128609279 192.0.2.1 9 typ host tcptype active"}
		}},
		{name: "hostname candidate", edit: func(m map[string]any) {
			m["candidates"] = []string{"1 1 udp 2130706431 example.com 44996 typ host"}
		}},
		{name: "mDNS candidate", edit: func(m map[string]any) {
			m["candidates"] = []string{"1 1 udp 2130706431 0b6e-4c3e.local 44996 typ host"}
		}},
		{name: "port 0", edit: func(m map[string]any) {
			m["candidates"] = []string{"1 1 udp 2130706431 192.0.2.1 0 typ host"}
		}},
		{name: "long candidate", edit: func(m map[string]any) {
			m["candidates"] = []string{hostCand + " generation 0" + strings.Repeat(" network-id 1", 30)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			if tt.edit != nil {
				raw = signalJSON(t, tt.edit)
			}
			_, err := parseSignal(raw)
			assert.ErrorIs(t, err, ErrBadSignal)
		})
	}
}

// FuzzParseSignal checks that parseSignal never panics, and that what it
// accepts survives our own encoding unchanged. Seeds: testdata/fuzz/FuzzParseSignal.
func FuzzParseSignal(f *testing.F) {
	good, _ := json.Marshal(validSignal())
	f.Add(good)
	f.Add([]byte(`{"v":1,"type":"answer","session":"` + testSession + `","ufrag":"abcd","pwd":"` + testPwd + `","candidates":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSignal(b)
		if err != nil {
			if s != nil {
				t.Fatal("signal returned with an error")
			}
			return
		}
		again, err := s.marshal()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := parseSignal(again)
		if err != nil {
			t.Fatalf("re-encoded signal rejected: %v\n%s", err, again)
		}
		if !assert.ObjectsAreEqual(s, s2) {
			t.Fatalf("round trip changed the signal: %+v vs %+v", s, s2)
		}
	})
}

func TestLimitCandidates(t *testing.T) {
	var cands []string
	for range maxSignalCandidates + 5 {
		cands = append(cands, hostCand)
	}
	cands = append(cands, srflxCand)
	got := limitCandidates(cands)
	assert.Len(t, got, maxSignalCandidates)
	assert.Contains(t, got, srflxCand, "server-reflexive candidates are kept")
	assert.Equal(t, []string{hostCand}, limitCandidates([]string{hostCand}))
}
