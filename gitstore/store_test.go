package gitstore

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpen(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	tests := []struct {
		name    string
		cfg     func(dir string) Config
		wantErr error
		errText string
	}{
		{"no dir", func(string) Config { return Config{} }, nil, "Dir is required"},
		{"missing dir", func(d string) Config { return Config{Dir: filepath.Join(d, "nope"), Create: true} }, os.ErrNotExist, ""},
		{"not a dir", func(string) Config { return Config{Dir: file, Create: true} }, nil, "not a directory"},
		{"not initialized", func(d string) Config { return Config{Dir: d} }, ErrNotInitialized, ""},
		{"create", func(d string) Config { return Config{Dir: d, Create: true} }, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tt.cfg(dir)
			orig := cfg
			s, err := Open(cfg)
			assert.Equal(t, orig, cfg, "Open must not mutate cfg")
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
			case tt.errText != "":
				require.ErrorContains(t, err, tt.errText)
			default:
				require.NoError(t, err)
				h, err := s.Head()
				require.NoError(t, err)
				assert.True(t, h.IsZero())
				require.NoError(t, s.Close())
				// Re-open without Create: the marker is there now.
				s, err = Open(Config{Dir: dir})
				require.NoError(t, err)
				require.NoError(t, s.Close())
				// git recognizes the directory.
				git(t, dir, "--git-dir="+filepath.Join(dir, GitDirName), "rev-parse", "--git-dir")
			}
		})
	}
}

func TestClose(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	ctx := context.Background()
	_, err := s.Head()
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Scan(ctx)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.PeerHead(peerA)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.HasCommit(Hash{})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.WriteBundle(ctx, nil, nil)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.ApplyBundle(ctx, nil, peerA)
	assert.ErrorIs(t, err, ErrClosed)
}

func TestHashText(t *testing.T) {
	h, err := ParseHash("0123456789abcdef0123456789ABCDEF01234567")
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", h.String())
	assert.False(t, h.IsZero())
	b, err := json.Marshal(map[string]Hash{"h": h})
	require.NoError(t, err)
	var back map[string]Hash
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, h, back["h"])
	for _, bad := range []string{"", "abc", "zz23456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef012345678"} {
		_, err := ParseHash(bad)
		assert.Error(t, err, bad)
	}
}

func TestPeerHeadValidation(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	for _, bad := range []string{"", "lower", "../x", "A/B", "-AB", "A B", "A1"} {
		_, err := s.PeerHead(bad)
		assert.Error(t, err, bad)
	}
	h, err := s.PeerHead(peerA)
	require.NoError(t, err)
	assert.True(t, h.IsZero())
}

func TestFolderGuard(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "f", "x")
	scan(t, s)
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), GitDirName)))
	_, err := s.Scan(context.Background())
	assert.ErrorIs(t, err, ErrNotInitialized)
}
