package mirror

import (
	"testing"

	"go.uber.org/goleak"
)

// userCleanup removes the servers' login user after the tests ran, before
// goleak looks for leaked goroutines.
type userCleanup struct{ m *testing.M }

func (u userCleanup) Run() int {
	code := u.m.Run()
	removeTestUser()
	return code
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(userCleanup{m})
}
