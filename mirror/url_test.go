package mirror

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Target
		str  string
	}{
		{"ftp://me@host/www", Target{Kind: FTP, User: "me", Host: "host", Port: "21", Path: "/www"}, "ftp://me@host:21/www"},
		{"ftps://me:pa%40ss@host:2121/a/b/", Target{Kind: FTPS, User: "me", Password: "pa@ss", HasPassword: true, Host: "host", Port: "2121", Path: "/a/b"}, "ftps://me:xxxxx@host:2121/a/b"},
		{"sftp://u%40dom@[::1]:2222/", Target{Kind: SFTP, User: "u@dom", Host: "::1", Port: "2222", Path: "."}, "sftp://u%40dom@[::1]:2222/"},
		{"SFTP://u@h", Target{Kind: SFTP, User: "u", Host: "h", Port: "22", Path: "."}, "sftp://u@h:22/"},
		{"sftp://u@h/~/site", Target{Kind: SFTP, User: "u", Host: "h", Port: "22", Path: "site"}, "sftp://u@h:22/~/site"},
		{"sftp://u:@h/x", Target{Kind: SFTP, User: "u", HasPassword: true, Host: "h", Port: "22", Path: "/x"}, "sftp://u:xxxxx@h:22/x"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseTarget(tc.url)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.str, got.String())
			back, err := ParseTarget(got.String())
			require.NoError(t, err)
			assert.Equal(t, got.Path, back.Path, "String round-trips the path")
		})
	}
}

// TestParseTargetErrors checks that bad URLs are refused with a message
// that quotes the URL without its password.
func TestParseTargetErrors(t *testing.T) {
	for _, tc := range []struct{ url, reason string }{
		{"http://u:secretpw@h/x", "scheme must be"},
		{"ftp://h/x", "no user name"},
		{"ftp://:secretpw@h/x", "no user name"},
		{"sftp://u:secretpw@h/x?key=/k", "query strings"},
		{"ftp:u@h", "no host"},
		{"ftp://u:secretpw@/x", "no host"},
		{"ftp://u:secret%0Apw@h/x", "line break"},
		{"ftp://u:secretpw@h:bad/x", "not a URL"},
		{"ftp://u:secretpw@h/a%0Ab", "line break"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := ParseTarget(tc.url)
			var ue *URLError
			require.ErrorAs(t, err, &ue)
			assert.Contains(t, err.Error(), tc.reason)
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}

// TestNewErrors checks Config validation.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("x\n"), 0o600))
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no state dir", Config{URL: "ftp://u@h/"}, "StateDir is required"},
		{"two passwords", Config{URL: "ftp://u:p@h/", StateDir: dir, PasswordFile: pw}, "give one"},
		{"missing password file", Config{URL: "ftp://u@h/", StateDir: dir, PasswordFile: filepath.Join(dir, "nope")}, "password file"},
		{"pin on sftp", Config{URL: "sftp://u:p@h/", StateDir: dir, CertFingerprint: "SHA256:00"}, "for ftps://"},
		{"bad pin", Config{URL: "ftps://u:p@h/", StateDir: dir, CertFingerprint: "SHA256:zz"}, "64 hex digits"},
		{"key on ftp", Config{URL: "ftp://u@h/", StateDir: dir, KeyFile: pw}, "for sftp://"},
		{"bad key", Config{URL: "sftp://u@h/", StateDir: dir, KeyFile: pw}, "key file"},
		{"sftp without credentials", Config{URL: "sftp://u@h/", StateDir: dir}, "no password and no Config.KeyFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// Colons between the bytes are accepted, as openssl prints them.
	pin := strings.ToUpper(strings.Repeat("ab:", 31) + "ab")
	_, err := New(Config{URL: "ftps://u:p@h/", StateDir: dir, CertFingerprint: "sha256 Fingerprint=" + pin})
	require.NoError(t, err)
}

func TestClosedMirror(t *testing.T) {
	m, err := New(Config{URL: "ftp://u:p@127.0.0.1:1/", StateDir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	_, err = m.Sync(t.Context(), t.TempDir(), nil)
	assert.True(t, errors.Is(err, ErrClosed))
}

// FuzzParseTarget checks that parsing never panics and that a parsed
// target's String parses back to the same target, without the password.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"ftp://me@host/www", "ftps://me:pw@host:2121/a", "sftp://u@[::1]/~/x", "sftp://u@h/%2e%2e", "ftp://u@h/a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := ParseTarget(raw)
		if err != nil {
			return
		}
		if tg.Password != "" && strings.Contains(tg.String(), tg.Password) && !strings.Contains(tg.String(), "xxxxx") {
			t.Fatalf("String shows the password: %q", tg.String())
		}
		back, err := ParseTarget(tg.String())
		if err != nil {
			t.Fatalf("String %q does not parse: %v", tg.String(), err)
		}
		back.Password = tg.Password
		if back != tg {
			t.Fatalf("round trip: %+v != %+v", back, tg)
		}
	})
}

// FuzzParseManifest checks that a manifest read from a target never panics
// the parser and that every accepted path is clean and mirrorable.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"files":{"a/b.txt":{"size":3,"mtime":"2026-01-01T00:00:00Z","sha256":"` + strings.Repeat("0", 64) + `"}},"pending":["c"]}`))
	f.Add([]byte(`{"version":1,"files":{"../x":{"size":1,"sha256":"` + strings.Repeat("0", 64) + `"}}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			return
		}
		for p := range m.Files {
			if checkRemotePath(p) != nil || strings.Contains(p, "..") && strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("accepted path %q", p)
			}
		}
	})
}
