package testutil

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand: Now returns the same time until
// Set or Advance moves it, so what a test checks at a given time cannot
// drift with the machine's load. Pass its Now method where peersync takes
// a clock (the Now fields of sync.Config, gitstore.Config,
// discovery.Config and the web view's). It is safe for concurrent use: the
// code under test reads it from its own goroutines while the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t (backwards too, as a user's clock may jump).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
