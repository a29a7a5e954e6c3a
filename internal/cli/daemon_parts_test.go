package cli

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseRun: ParseRun takes run's command line (with or without `run`,
// --home in front) to a sync.Config with the identity and the API key
// ready, hands the program its own flags, and sends any other command to
// Run.
func TestParseRun(t *testing.T) {
	home := t.TempDir()
	var ui string
	prog := Program{Name: "peersync-test", Services: func(fs *flag.FlagSet) func(ctx context.Context, env Env) (func(), error) {
		fs.StringVar(&ui, "ui", "default", "")
		return nil
	}}
	for _, args := range [][]string{{"--home", home, "status"}, {"--home", home, "folder", "add", "x"}, {"-h"}} {
		_, err := ParseRun(prog, args, io.Discard, io.Discard)
		assert.ErrorIs(t, err, ErrNotRun, args)
	}
	_, err := os.Stat(filepath.Join(home, "identity"))
	assert.ErrorIs(t, err, os.ErrNotExist, "another command's line creates nothing")

	s, err := ParseRun(prog, []string{"--home", home, "run", "--listen", "127.0.0.1:0", "--lan-name", "den.local",
		"--scan-interval", "3s", "--ui", "none"}, io.Discard, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "none", ui, "the program's flag")
	assert.Equal(t, home, s.Config.Home)
	assert.Equal(t, "127.0.0.1:0", s.Config.Network.ListenAddr)
	assert.Equal(t, 3*time.Second, s.Config.ScanInterval)
	assert.Equal(t, "den", s.LANName)
	assert.Equal(t, "den", s.Config.Discovery.HostName)
	require.NotNil(t, s.Config.Identity, "identity created")
	key, err := os.ReadFile(filepath.Join(home, "apikey"))
	require.NoError(t, err)
	assert.Contains(t, string(key), s.APIKey)
	assert.NotEmpty(t, s.APIKey)

	s2, err := ParseRun(prog, []string{"--home", home}, io.Discard, io.Discard)
	require.NoError(t, err, "no command means run")
	assert.Equal(t, s.Config.Identity.DeviceID(), s2.Config.Identity.DeviceID(), "the same identity, loaded")
	assert.True(t, s2.Config.Discovery.Enabled)

	_, err = ParseRun(prog, []string{"--home", home, "run", "--lan-name", "x", "--no-discovery"}, io.Discard, io.Discard)
	var ue UsageError
	assert.ErrorAs(t, err, &ue)
	_, err = ParseRun(prog, []string{"--home", home, "run", "extra"}, io.Discard, io.Discard)
	assert.ErrorAs(t, err, &ue)
}
