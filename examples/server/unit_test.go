package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// TestSystemdUnit checks peersync-server.service with `systemd-analyze
// verify` (where systemd is installed), with ExecStart pointing at a freshly
// built server, and that the hardening this README promises is in it.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("peersync-server.service")
	require.NoError(t, err)
	text := string(unit)
	for _, want := range []string{"User=peersync", "StateDirectory=peersync", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ProtectHome=yes", "PrivateTmp=yes", "KillSignal=SIGTERM", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "--log-json"} {
		assert.Contains(t, text, want)
	}
	if runtime.GOOS != "linux" {
		t.Skip("systemd is Linux only")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	if testing.Short() {
		t.Skip("builds the server")
	}
	bin := testutil.BuildBinary(t, "./examples/server")
	file := filepath.Join(t.TempDir(), "peersync-server.service")
	require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(text, "/usr/local/bin/peersync-server", bin)), 0o644))
	out, err := exec.Command(analyze, "verify", "--man=no", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "no warnings")
}
