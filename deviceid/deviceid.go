package deviceid

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ID identifies a device (a DeviceID). It is the device's Ed25519 public key
// itself, so knowing a DeviceID is enough both to authenticate the peer in a
// TLS handshake and to seal data to it.
//
// ID is a comparable value: use it as a map key, compare it with ==.
// The zero value is not a valid device.
type ID [ed25519.PublicKeySize]byte

// ErrInvalid is returned (wrapped) when a string is not a valid
// device ID: wrong length, a character outside base32, or a check character
// that does not match (a typo).
var ErrInvalid = errors.New("invalid device ID")

// b32 is RFC 4648 base32 without padding; 32 bytes give 52 characters.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

const (
	groupLen   = 13 // data characters per check group
	groups     = 4  // 4 × 13 = 52 data characters
	printedLen = groups * (groupLen + 1)
	dashEvery  = 7
)

// String returns the printed form: 52 base32 characters split into four
// groups of 13, each followed by a Luhn mod 32 check character, shown as
// eight dash-separated groups of seven, e.g.
// "MFZWI3D-BONSGYC-...". The format is that of Syncthing's device IDs, which
// users already know how to read out and compare.
func (d ID) String() string {
	data := b32.EncodeToString(d[:])
	var withChecks strings.Builder
	for g := 0; g < groups; g++ {
		chunk := data[g*groupLen : (g+1)*groupLen]
		withChecks.WriteString(chunk)
		withChecks.WriteByte(luhn32(chunk))
	}
	s := withChecks.String()
	var out strings.Builder
	for i := 0; i < len(s); i += dashEvery {
		if i > 0 {
			out.WriteByte('-')
		}
		out.WriteString(s[i : i+dashEvery])
	}
	return out.String()
}

// Short returns the first seven characters of the printed form, the part
// shown in conflict file names and logs.
func (d ID) Short() string { return d.String()[:dashEvery] }

// IsZero reports whether d is the zero value.
func (d ID) IsZero() bool { return d == ID{} }

// PublicKey returns the Ed25519 public key that d is.
func (d ID) PublicKey() ed25519.PublicKey { return bytes.Clone(d[:]) }

// MarshalText implements encoding.TextMarshaler with the printed form.
func (d ID) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what
// Parse accepts.
func (d *ID) UnmarshalText(b []byte) error {
	id, err := Parse(string(b))
	if err != nil {
		return err
	}
	*d = id
	return nil
}

// LogValue implements slog.LogValuer: logs show the short form.
func (d ID) LogValue() slog.Value { return slog.StringValue(d.Short()) }

// Parse parses the printed form of a device ID. Dashes and spaces are
// ignored, lower case is accepted, and the digits 0, 1 and 8 (never produced
// by base32) are read as the letters O, I and B they are often mistaken for.
// Every group's check character is verified, so a mistyped character is
// reported instead of naming some other device.
func Parse(s string) (ID, error) {
	var id ID
	clean := strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ':
			return -1
		case '0':
			return 'O'
		case '1':
			return 'I'
		case '8':
			return 'B'
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if len(clean) != printedLen {
		return id, fmt.Errorf("%w %q: want %d characters without dashes, got %d", ErrInvalid, s, printedLen, len(clean))
	}
	var data strings.Builder
	for g := 0; g < groups; g++ {
		chunk := clean[g*(groupLen+1) : (g+1)*(groupLen+1)]
		body, check := chunk[:groupLen], chunk[groupLen]
		for i := 0; i < len(body); i++ {
			if strings.IndexByte(b32Alphabet, body[i]) < 0 {
				return id, fmt.Errorf("%w %q: character %q is not base32", ErrInvalid, s, body[i])
			}
		}
		if luhn32(body) != check {
			return id, fmt.Errorf("%w %q: check character of group %d does not match (typo?)", ErrInvalid, s, g+1)
		}
		data.WriteString(body)
	}
	raw, err := b32.DecodeString(data.String())
	if err != nil || len(raw) != len(id) {
		return id, fmt.Errorf("%w %q: not base32", ErrInvalid, s)
	}
	copy(id[:], raw)
	return id, nil
}

const b32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// luhn32 computes the Luhn mod 32 check character of s (characters from
// b32Alphabet). It catches every single-character error and most swaps of
// adjacent characters.
func luhn32(s string) byte {
	const n = 32
	factor, sum := 2, 0
	for i := len(s) - 1; i >= 0; i-- {
		addend := factor * strings.IndexByte(b32Alphabet, s[i])
		factor = 3 - factor
		sum += addend/n + addend%n
	}
	return b32Alphabet[(n-sum%n)%n]
}
