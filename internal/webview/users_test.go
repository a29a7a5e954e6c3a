package webview

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "users.json")
	u := OpenUsers(path)
	list, err := u.List()
	require.NoError(t, err)
	assert.Empty(t, list, "no file yet: no users")

	replaced, err := u.Add("ann", "correct horse", []string{"docs", "photos"})
	require.NoError(t, err)
	assert.False(t, replaced)
	_, err = u.Add("bob", "battery staple", []string{AllFolders})
	require.NoError(t, err)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "correct horse")
	assert.Contains(t, string(raw), `"$argon2id$v=19$m=19456,t=2,p=1$`)

	// Another process (a fresh Users) reads what was written.
	other := OpenUsers(path)
	ann, ok, err := other.Verify("ann", "correct horse")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, ann.Grants("docs"))
	assert.False(t, ann.Grants("secret"))
	_, ok, err = other.Verify("ann", "Correct horse")
	require.NoError(t, err)
	assert.False(t, ok)
	_, ok, err = other.Verify("carol", "correct horse")
	require.NoError(t, err)
	assert.False(t, ok, "unknown user")
	bob, _, _ := other.Lookup("bob")
	assert.True(t, bob.Grants("anything"))

	// Replacing sets a new password (and salt).
	replaced, err = other.Add("ann", "new password!", nil)
	require.NoError(t, err)
	assert.True(t, replaced)
	_, ok, _ = u.Verify("ann", "correct horse")
	assert.False(t, ok, "u sees the change made through other")
	ann, ok, _ = u.Verify("ann", "new password!")
	assert.True(t, ok)
	assert.False(t, ann.Grants("docs"), "no folders granted now")

	require.NoError(t, u.Remove("ann"))
	assert.ErrorIs(t, u.Remove("ann"), ErrNoUser)
	list, err = other.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "bob", list[0].Name)

	for _, bad := range []string{"", "a b", "a/b", "<x>", strings.Repeat("x", 65)} {
		_, err := u.Add(bad, "long enough", nil)
		assert.Error(t, err, "name %q", bad)
	}
	_, err = u.Add("dan", "short", nil)
	assert.ErrorContains(t, err, "too short")

	// A broken file is an error, not an empty user list.
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err = OpenUsers(path).List()
	assert.Error(t, err)
}

func TestHostileHashRefused(t *testing.T) {
	for _, h := range []string{
		"$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 4 TiB of memory
		"$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$2y$10$abcdefghijklmnopqrstuv",
		"plain",
	} {
		ok, err := checkPassword(h, "x")
		assert.False(t, ok, h)
		assert.Error(t, err, h)
	}
}
