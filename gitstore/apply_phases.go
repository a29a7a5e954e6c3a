package gitstore

import (
	"log/slog"
	"time"
)

// The size of a bundle, in objects or pack bytes, from which its apply
// logs where its time went (receivePack's "stored bundle" line): a first
// sync's or a big file's, not every edit's.
const (
	phaseLogMinObjects = 1000
	phaseLogMinBytes   = 8 << 20
)

// phaseClock notes how long each phase of an apply took, for one log
// line that says where the time after the last byte went. A nil
// phaseClock notes nothing.
type phaseClock struct {
	last  time.Time
	attrs []any
}

func newPhaseClock() *phaseClock { return &phaseClock{last: time.Now()} }

// mark ends the phase called name (the next one starts).
func (c *phaseClock) mark(name string) {
	if c == nil {
		return
	}
	now := time.Now()
	c.attrs = append(c.attrs, name, now.Sub(c.last).Round(time.Millisecond))
	c.last = now
}

// log writes the phases noted, after the attributes given.
func (c *phaseClock) log(l *slog.Logger, msg string, attrs ...any) {
	if c == nil || len(c.attrs) == 0 {
		return
	}
	l.Info(msg, append(attrs, c.attrs...)...)
}
