package transport

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCloseMessage(t *testing.T) {
	tests := []struct {
		name string
		code CloseCode
		msg  string
		want string
	}{
		{"empty", 0, "", ""},
		{"message", 42, "bye", "bye"},
		{"max code", ^CloseCode(0), "x", "x"},
		{"cut at a rune", 3, string(bytes.Repeat([]byte("é"), maxCloseMessage)), string(bytes.Repeat([]byte("é"), maxCloseMessage/2))},
		{"invalid UTF-8 replaced", 4, "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := closeMessage(tt.code, tt.msg)
			require.GreaterOrEqual(t, len(b), 8)
			code, msg, err := parseCloseMessage(b)
			require.NoError(t, err)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.want, msg)
		})
	}
	for _, bad := range [][]byte{nil, make([]byte, 7), append(make([]byte, 8), 0xff), make([]byte, maxCloseBody+1)} {
		_, _, err := parseCloseMessage(bad)
		assert.ErrorIs(t, err, errBadCloseMessage)
	}
}

func FuzzCloseMessage(f *testing.F) {
	f.Add(closeMessage(0, ""))
	f.Add(closeMessage(42, "bye"))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg, err := parseCloseMessage(b)
		if err != nil {
			return
		}
		// What parses survives a round trip.
		code2, msg2, err := parseCloseMessage(closeMessage(code, msg))
		if err != nil || code2 != code || msg2 != msg {
			t.Fatalf("round trip: %d %q → %d %q %v", code, msg, code2, msg2, err)
		}
	})
}
