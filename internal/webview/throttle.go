package webview

import (
	"net"
	"net/netip"
	gosync "sync"
	"time"
)

// throttle slows password guessing: after freeFails failed logins for a key
// (a client address, or a user name), each further attempt for that key
// must wait, twice as long after each failure, up to maxDelay. A successful
// login clears the user's and the address's record. Both keys are checked
// before the password is: a guesser spread over many addresses still hits
// the user's key, one trying many names hits the address's.
type throttle struct {
	now func() time.Time

	mu   gosync.Mutex
	keys map[string]*failures
}

type failures struct {
	n     int       // consecutive failures
	until time.Time // no attempt before
	last  time.Time
}

const (
	freeFails   = 3
	firstDelay  = time.Second
	maxDelay    = 15 * time.Minute
	forgetAfter = time.Hour // a key's failures are forgotten after an hour of silence
	maxKeys     = 100_000   // bound on remembered keys (memory); see add
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, keys: map[string]*failures{}}
}

// addrKey groups IPv6 clients by /64 (one subscriber's usual allocation),
// so a guesser cannot walk through its addresses.
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}

func userKey(name string) string { return "user:" + name }

// wait returns how long the caller must still wait before an attempt for
// any of keys; 0 means go ahead.
func (t *throttle) wait(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var d time.Duration
	for _, k := range keys {
		if f := t.keys[k]; f != nil && f.until.After(now) {
			d = max(d, f.until.Sub(now))
		}
	}
	return d
}

// fail records a failed attempt for each key.
func (t *throttle) fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.keys) >= maxKeys {
		t.sweepLocked(now)
	}
	for _, k := range keys {
		f := t.keys[k]
		if f == nil || now.Sub(f.last) > forgetAfter {
			if len(t.keys) >= maxKeys {
				// Full of recent failures: refuse to forget; the newcomer
				// shares one bucket (slowed together) rather than growing
				// memory without bound.
				k = "overflow"
				if f = t.keys[k]; f == nil {
					f = &failures{}
				}
			} else {
				f = &failures{}
			}
			t.keys[k] = f
		}
		f.n++
		f.last = now
		if f.n >= freeFails {
			d := firstDelay << min(f.n-freeFails, 20)
			f.until = now.Add(min(d, maxDelay))
		}
	}
}

// ok clears the keys' records after a successful login.
func (t *throttle) ok(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.keys, k)
	}
}

func (t *throttle) sweepLocked(now time.Time) {
	for k, f := range t.keys {
		if now.Sub(f.last) > forgetAfter && !f.until.After(now) {
			delete(t.keys, k)
		}
	}
}
