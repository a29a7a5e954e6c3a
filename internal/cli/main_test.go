package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// daemon's HTTP server and runtime publisher, mirror uploads, the
// progress meter's ticker, the engines the commands run in process).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
