package peersync_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLayers checks the layer rule of docs/design.md ("Layers") with
// `go list -deps`: the four layers gitstore, crypto, transport and
// discovery import none of each other, directly or through another package,
// except transport → crypto (device identities); none of them imports sync,
// the examples or internal/cli. Any of them may import the leaf deviceid
// and the internal helpers below them.
func TestLayers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("LOUD SKIP: the go command is needed to list imports")
	}
	const mod = "github.com/peersync/peersync/"
	layers := []string{"gitstore", "crypto", "transport", "discovery"}
	above := []string{"sync", "examples", "internal/cli"}
	allowed := map[[2]string]bool{{"transport", "crypto"}: true}
	// under reports whether import path p is pkg or one of its subpackages.
	under := func(p, pkg string) bool {
		return p == mod+pkg || strings.HasPrefix(p, mod+pkg+"/")
	}
	for _, l := range layers {
		t.Run(l, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "./"+l+"/...").CombinedOutput()
			require.NoError(t, err, "go list -deps ./%s/...: %s", l, out)
			deps := strings.Fields(string(out))
			require.Contains(t, deps, mod+l, "go list must list the layer itself")
			for _, d := range deps {
				for _, other := range layers {
					if other != l && under(d, other) && !allowed[[2]string{l, other}] {
						assert.Failf(t, "layer rule broken", "%s depends on %s (allowed between layers: transport → crypto)", l, d)
					}
				}
				for _, a := range above {
					assert.Falsef(t, under(d, a), "%s depends on %s, a package above the layers", l, d)
				}
			}
		})
	}
}
