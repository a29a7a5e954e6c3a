package cli

import (
	"io"
	"log/slog"
	gosync "sync"

	"github.com/peersync/peersync/sync"
)

// newLogger returns run's logger: text, or with --log-json one JSON object
// per line (time, level, msg and the attributes), for journald or a log
// collector.
func newLogger(w io.Writer, level slog.Level, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// eventObservers are the functions `run` hands every engine event to
// (Env.Observe; the mirrors): added while the daemon starts, called from
// the goroutine that reads the events.
type eventObservers struct {
	mu  gosync.Mutex
	fns []func(sync.Event)
}

// add registers f; it must not block.
func (o *eventObservers) add(f func(sync.Event)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fns = append(o.fns, f)
}

// emit calls every observer with ev.
func (o *eventObservers) emit(ev sync.Event) {
	o.mu.Lock()
	fns := o.fns
	o.mu.Unlock()
	for _, f := range fns {
		f(ev)
	}
}
