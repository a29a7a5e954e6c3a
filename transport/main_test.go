package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: every
// goroutine this package starts ends with the Conn, session or Transport
// that owns it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
