package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/peersync/peersync/crypto"
)

// RateLimit caps bundle traffic in bytes per second: Up what this device
// sends, Down what it receives. 0 means no limit. Its JSON form is
// {"up":N,"down":N}.
type RateLimit struct {
	Up   int64 `json:"up"`
	Down int64 `json:"down"`
}

// Validate reports whether l is usable (no negative rate).
func (l RateLimit) Validate() error {
	if l.Up < 0 || l.Down < 0 {
		return fmt.Errorf("sync: rate limit up %d, down %d: a rate is bytes per second, 0 or more", l.Up, l.Down)
	}
	return nil
}

// UnmarshalJSON decodes and validates a limit.
func (l *RateLimit) UnmarshalJSON(b []byte) error {
	type plain RateLimit
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("sync: rate limit: %w", err)
	}
	if err := RateLimit(p).Validate(); err != nil {
		return err
	}
	*l = RateLimit(p)
	return nil
}

// SetLimits sets the bandwidth limits of one peer, or the global ones when
// peer is the zero DeviceID, and persists them. Both apply to a peer's
// bundle streams (the stricter wins); the global limits are shared by all
// peers together. A change applies to transfers already running.
func (e *Engine) SetLimits(peer crypto.DeviceID, l RateLimit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	return e.update(func(c *config) error {
		if peer.IsZero() {
			c.Limits = l
			return nil
		}
		for i := range c.Peers {
			if c.Peers[i].Device == peer {
				c.Peers[i].Limits = l
				return nil
			}
		}
		return noPeer(peer)
	})
}

// Limits returns the global bandwidth limits; a peer's own are in its
// PeerConfig.Limits.
func (e *Engine) Limits() RateLimit {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conf.Limits
}

// noPeer is the error for a device that is not in the sync table.
func noPeer(d crypto.DeviceID) error {
	return fmt.Errorf("sync: %s is not in the sync table: %w", d.Short(), crypto.ErrUnknownPeer)
}

// bucket is one direction's token bucket and the rate it was made for.
type bucket struct {
	bps int64
	l   *rate.Limiter
}

// burst is the token bucket size for a rate: a quarter second of
// traffic, at least 16 KiB, so that a stream that fell behind for a
// moment (a busy CPU, a slow disk) catches up and keeps the average.
func burst(bps int64) int {
	return int(min(max(bps/4, 16<<10), 1<<30))
}

// limiter returns the bucket's limiter for bps (nil for no limit),
// creating or retuning it. A new bucket starts empty, so that a transfer's
// first second is not a burst above the limit. e.mu must be held.
func (b *bucket) limiter(bps int64) *rate.Limiter {
	if bps <= 0 {
		b.bps, b.l = 0, nil
		return nil
	}
	switch {
	case b.l == nil:
		b.l = rate.NewLimiter(rate.Limit(bps), burst(bps))
		b.l.AllowN(time.Now(), burst(bps))
	case b.bps != bps:
		b.l.SetLimit(rate.Limit(bps))
		b.l.SetBurst(burst(bps))
	}
	b.bps = bps
	return b.l
}

// links are the limiters of one scope (global, or one peer), by direction.
type links struct{ up, down bucket }

// pick returns the bucket of a direction.
func (k *links) pick(up bool) *bucket {
	if up {
		return &k.up
	}
	return &k.down
}

// throttle is the set of limiters one stream waits on (global and peer);
// its zero value waits on nothing.
type throttle struct{ ls []*rate.Limiter }

// limitersFor returns the throttle of the bundle streams to (up) or from
// peer, per the current configuration. Not running: none.
func (e *Engine) limitersFor(peer crypto.DeviceID, up bool) throttle {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.schedLocked()
	if s == nil {
		return throttle{}
	}
	var t throttle
	dir := func(l RateLimit) int64 {
		if up {
			return l.Up
		}
		return l.Down
	}
	if l := s.global.pick(up).limiter(dir(e.conf.Limits)); l != nil {
		t.ls = append(t.ls, l)
	}
	p, _ := e.conf.peer(peer)
	if l := e.schedPeerLocked(peer).lim.pick(up).limiter(dir(p.Limits)); l != nil {
		t.ls = append(t.ls, l)
	}
	return t
}

// limited reports whether any limit applies.
func (t throttle) limited() bool { return len(t.ls) > 0 }

// chunk is the data frame size to send under t: frames of about a
// quarter second at the strictest rate, so that progress and the limit
// move smoothly.
func (t throttle) chunk() int {
	n := maxChunk
	for _, l := range t.ls {
		n = min(n, max(int(l.Limit()/4), 4<<10))
	}
	return n
}

// wait blocks until n more bytes may pass every limiter of t.
func (t throttle) wait(ctx context.Context, n int) error {
	for _, l := range t.ls {
		for rest := n; rest > 0; {
			step := min(rest, l.Burst())
			if err := l.WaitN(ctx, step); err != nil {
				return err
			}
			rest -= step
		}
	}
	return nil
}
