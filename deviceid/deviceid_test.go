package deviceid

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedID returns a deterministic ID that is not all one byte.
func fixedID(seed byte) ID {
	return ID(sha256.Sum256([]byte{seed}))
}

func TestDeviceIDRoundTrip(t *testing.T) {
	for seed := byte(0); seed < 20; seed++ {
		d := fixedID(seed)
		s := d.String()
		assert.Len(t, s, 63, "8 groups of 7 plus 7 dashes")
		assert.Equal(t, 7, strings.Count(s, "-"))
		got, err := Parse(s)
		require.NoError(t, err)
		assert.Equal(t, d, got)

		// Forgiving input: lower case, no dashes, spaces.
		got, err = Parse(strings.ToLower(strings.ReplaceAll(s, "-", " ")))
		require.NoError(t, err)
		assert.Equal(t, d, got)
	}
}

func TestDeviceIDCatchesTypos(t *testing.T) {
	d := fixedID(7)
	s := strings.ReplaceAll(d.String(), "-", "")
	caught := 0
	total := 0
	for i := 0; i < len(s); i++ {
		for _, c := range b32Alphabet {
			if byte(c) == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			total++
			if _, err := Parse(typo); err != nil {
				assert.ErrorIs(t, err, ErrInvalid)
				caught++
			}
		}
	}
	assert.Equal(t, total, caught, "every single-character substitution must be caught")
}

func TestParseErrors(t *testing.T) {
	valid := fixedID(1).String()
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"short", valid[:20]},
		{"long", valid + "AAAAAAA"},
		{"not base32", strings.Replace(valid, valid[:1], "!", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestDeviceIDText(t *testing.T) {
	d := fixedID(3)
	b, err := json.Marshal(map[ID]ID{d: d})
	require.NoError(t, err)
	var back map[ID]ID
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, d, back[d])
	assert.Equal(t, d.String()[:7], d.Short())
	assert.False(t, d.IsZero())
	assert.True(t, ID{}.IsZero())
}
