package sync

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{"type":"control","name":"laptop"}`, true},
		{`{"type":"head","folder":"docs","head":"0123456789abcdef0123456789abcdef01234567"}`, true},
		{`{"type":"want","folder":"docs","since":[]}`, true},
		{`{"type":"head","folder":"../etc"}`, false},
		{`{"type":"head","folder":""}`, false},
		{`{"type":"head","folder":"docs","head":"nothex"}`, false},
		{`{"type":"nope"}`, false},
		{`not json`, false},
		{``, false},
	}
	for _, tt := range tests {
		_, err := decodeMessage([]byte(tt.in))
		if tt.ok {
			assert.NoError(t, err, tt.in)
		} else {
			assert.Error(t, err, tt.in)
		}
	}
}

// TestDecodeAnswerTrailer: since version 3 the trailer's SHA-256 is
// optional, but one that is there must be 64 hex digits; the bundle frame
// may declare the sender's version.
func TestDecodeAnswerTrailer(t *testing.T) {
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in string
		ok bool
	}{
		{`{"type":"end","size":3}`, true},
		{`{"type":"end","size":3,"sha256":"` + sum + `"}`, true},
		{`{"type":"end","size":3,"sha256":"` + sum[:63] + `"}`, false},
		{`{"type":"end","size":3,"sha256":"` + sum[:63] + `g"}`, false},
		{`{"type":"end","size":-1}`, false},
		{`{"type":"bundle","bundle":"0123456789abcdef0123456789abcdef","proto":3}`, true},
	}
	for _, tt := range tests {
		a, err := decodeAnswer([]byte(tt.in))
		if !tt.ok {
			assert.Error(t, err, tt.in)
			continue
		}
		if assert.NoError(t, err, tt.in) && a.Type == ansBundle {
			assert.Equal(t, 3, a.Proto)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"type":"control","name":"laptop"}`))
	f.Add([]byte(`{"type":"want","folder":"docs","since":["0123456789abcdef0123456789abcdef01234567"]}`))
	f.Add([]byte(`{"size":12}`))
	f.Add([]byte(`{"type":"bundle","bundle":"0123456789abcdef0123456789abcdef","offset":5}`))
	f.Add([]byte(`{"type":"end","size":3,"sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{"type":"want","folder":"docs","resume":{"bundle":"0123456789abcdef0123456789abcdef","offset":7}}`))
	f.Add([]byte(`{"type":"end","size":3}`))
	f.Add([]byte(`{"type":"bundle","bundle":"0123456789abcdef0123456789abcdef","offset":5,"proto":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := decodeMessage(b); err == nil {
			if m.Type == msgHead || m.Type == msgWant {
				assert.NoError(t, ValidFolderID(m.Folder))
			}
			assert.LessOrEqual(t, len(m.Since), maxSince)
		}
		if a, err := decodeAnswer(b); err == nil {
			assert.GreaterOrEqual(t, a.Size, int64(0))
			assert.GreaterOrEqual(t, a.Offset, int64(0))
			assert.GreaterOrEqual(t, a.Produced, int64(0))
			assert.True(t, a.SHA256 == "" || sha256Re.MatchString(a.SHA256))
		}
	})
}
