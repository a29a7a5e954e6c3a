package peersync_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestCrossBuild checks the promise that everything builds without cgo for
// the desktop and server platforms users run.
func TestCrossBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the module six times")
	}
	targets := []struct{ goos, goarch string }{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
		{"windows", "amd64"}, {"windows", "arm64"},
	}
	for _, tt := range targets {
		t.Run(tt.goos+"-"+tt.goarch, func(t *testing.T) {
			cmd := exec.Command("go", "build", "./...")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+tt.goos, "GOARCH="+tt.goarch)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=%s GOARCH=%s CGO_ENABLED=0 go build ./...: %v\n%s", tt.goos, tt.goarch, err, out)
			}
		})
	}
}
