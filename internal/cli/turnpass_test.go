package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/transport"
)

func TestTURNServersPassword(t *testing.T) {
	dir := t.TempDir()
	n := 0
	file := func(content string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("pass%d", n))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	t.Run("from a file, first line only", func(t *testing.T) {
		t.Setenv(turnPassEnv, "from-env")
		got, pass, err := turnServers([]string{"turn://alice@turn.example.net:3478"}, file("s3cret\nignored\n"))
		require.NoError(t, err)
		assert.Equal(t, "s3cret", pass)
		assert.Equal(t, []transport.TURNServer{{Addr: "turn.example.net:3478", User: "alice", Pass: "s3cret"}}, got)
	})
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv(turnPassEnv, "from-env")
		got, _, err := turnServers([]string{"turn://alice@turn.example.net"}, "")
		require.NoError(t, err)
		assert.Equal(t, "from-env", got[0].Pass)
	})
	t.Run("one in the URL wins", func(t *testing.T) {
		t.Setenv(turnPassEnv, "from-env")
		got, _, err := turnServers([]string{"turn://alice:inline@turn.example.net"}, "")
		require.NoError(t, err)
		assert.Equal(t, "inline", got[0].Pass)
	})
	t.Run("none anywhere", func(t *testing.T) {
		t.Setenv(turnPassEnv, "")
		_, _, err := turnServers([]string{"turn://alice@turn.example.net"}, "")
		var ue UsageError
		require.True(t, errors.As(err, &ue), "a usage error, got %v", err)
		assert.Contains(t, err.Error(), "--turn-pass-file")
		assert.Contains(t, err.Error(), turnPassEnv)
	})
	for name, content := range map[string]string{"empty file": "\n", "too big": strings.Repeat("x", maxTURNPassFile+1)} {
		t.Run(name, func(t *testing.T) {
			_, _, err := turnServers(nil, file(content))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "--turn-pass-file")
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, _, err := turnServers(nil, filepath.Join(dir, "nope"))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
}
