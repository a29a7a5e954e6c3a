package discovery

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/deviceid"
)

func TestEncodeTXT(t *testing.T) {
	assert.Equal(t, []string{"id=" + self.String(), "v=1", "port=44996"}, encodeTXT(self, 44996))
}

func TestParseTXT(t *testing.T) {
	id := "id=" + peerID.String()
	typo := []byte(peerID.String())
	if typo[0] == 'A' {
		typo[0] = 'B'
	} else {
		typo[0] = 'A'
	}
	for _, tc := range []struct {
		name     string
		txt      []string
		wantPort uint16
		wantErr  bool
	}{
		{"ours", encodeTXT(peerID, 44996), 44996, false},
		{"order and case of keys do not matter", []string{"PORT=1", "V=1", "Id=" + peerID.String()}, 1, false},
		{"lower-case id without dashes", []string{"id=" + lowerNoDash(peerID.String()), "v=1"}, 0, false},
		{"port is optional", []string{id, "v=1"}, 0, false},
		{"unknown keys are ignored", []string{id, "v=1", "folders=secret", "flag"}, 0, false},
		{"empty strings are skipped", []string{"", id, "", "v=1"}, 0, false},
		{"first occurrence wins", []string{id, "v=1", "id=garbage", "v=9"}, 0, false},
		{"no id", []string{"v=1", "port=1"}, 0, true},
		{"id with no value", []string{"id", "v=1"}, 0, true},
		{"empty id", []string{"id=", "v=1"}, 0, true},
		{"typo in id", []string{"id=" + string(typo), "v=1"}, 0, true},
		{"zero id", []string{"id=" + zeroID(), "v=1"}, 0, true},
		{"no version", []string{id}, 0, true},
		{"other version", []string{id, "v=2"}, 0, true},
		{"port zero", []string{id, "v=1", "port=0"}, 0, true},
		{"port too big", []string{id, "v=1", "port=65536"}, 0, true},
		{"port not a number", []string{id, "v=1", "port=http"}, 0, true},
		{"nothing", nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := parseTXT(tc.txt)
			if tc.wantErr {
				require.Error(t, err)
				assert.ErrorIs(t, err, errBadTXT)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, peerID, info.Device)
			assert.Equal(t, tc.wantPort, info.Port)
		})
	}
}

func lowerNoDash(s string) string {
	out := []byte{}
	for _, c := range []byte(s) {
		if c == '-' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

func zeroID() string {
	var z deviceid.ID
	return z.String()
}
