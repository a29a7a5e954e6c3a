package mirrortest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is still running when
// they end: whoever starts a goroutine must stop it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
