package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/sync"
)

// DefaultRingSize is how many events the log keeps when Options.RingSize
// is 0.
const DefaultRingSize = 1024

// keepAliveEvery is how often an idle event stream gets an SSE comment, so
// that proxies and browsers keep it open and a dead client is noticed.
const keepAliveEvery = 15 * time.Second

// record is one event of the log with its ID.
type record struct {
	id uint64
	ev sync.Event
}

// eventLog is a bounded ring of events with increasing IDs (the first is
// 1). Readers never block the writer: a reader asks for what follows the
// last ID it saw and waits on the channel that add closes, so a slow
// reader costs nothing until it asks again (and then learns how many
// events it missed, if the ring moved past them).
type eventLog struct {
	mu     gosync.Mutex
	ring   []record // ring[i%len] holds ID i+1 once written
	next   uint64   // ID the next event gets
	wake   chan struct{}
	closed bool
}

func newEventLog(size int) *eventLog {
	if size <= 0 {
		size = DefaultRingSize
	}
	return &eventLog{ring: make([]record, size), next: 1, wake: make(chan struct{})}
}

// add appends ev and wakes every waiting reader; it returns ev's ID.
func (l *eventLog) add(ev sync.Event) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.next
	l.next++
	l.ring[(id-1)%uint64(len(l.ring))] = record{id: id, ev: ev}
	if !l.closed {
		close(l.wake)
		l.wake = make(chan struct{})
	}
	return id
}

// close ends every reader's wait for good.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.wake)
	}
}

// last returns the ID of the newest event (0 if none).
func (l *eventLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1
}

// since returns the events after ID after that the ring still holds, how
// many after it are no longer held (missed), the channel closed by the next
// add, and whether the log is closed.
func (l *eventLog) since(after uint64) (recs []record, missed uint64, wake <-chan struct{}, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	newest := l.next - 1
	if after > newest { // an ID from before a restart: all we hold, after a gap
		return l.since0(newest)
	}
	oldest := l.oldestLocked()
	if after+1 < oldest {
		missed = oldest - after - 1
		after = oldest - 1
	}
	return l.recordsLocked(after, newest), missed, l.wake, l.closed
}

// since0 is since for an ID the log never gave out (the daemon restarted):
// every event held, after a gap of unknown size (missed = unknownMissed).
func (l *eventLog) since0(newest uint64) ([]record, uint64, <-chan struct{}, bool) {
	return l.recordsLocked(l.oldestLocked()-1, newest), unknownMissed, l.wake, l.closed
}

// unknownMissed is since's missed count when it is unknown.
const unknownMissed = ^uint64(0)

func (l *eventLog) oldestLocked() uint64 {
	newest := l.next - 1
	if n := uint64(len(l.ring)); newest > n {
		return newest - n + 1
	}
	return 1
}

func (l *eventLog) recordsLocked(after, newest uint64) []record {
	var recs []record
	for id := after + 1; id <= newest; id++ {
		recs = append(recs, l.ring[(id-1)%uint64(len(l.ring))])
	}
	return recs
}

// EventJSON is how an event travels on /rest/events (the "data:" line):
// every field of sync.Event under its Go name, the error as its text, and
// the event's ID in the log.
type EventJSON struct {
	ID uint64 `json:"ID"`
	sync.Event
	// Err shadows sync.Event.Err (an error marshals as {}).
	Err string `json:"Err,omitempty"`
	// Missed is set on an EventGap only: how many events the ring no
	// longer held (0: unknown, the daemon restarted).
	Missed uint64 `json:"Missed,omitempty"`
}

func eventJSON(r record) EventJSON {
	j := EventJSON{ID: r.id, Event: r.ev}
	if r.ev.Err != nil {
		j.Err = r.ev.Err.Error()
	}
	return j
}

// serveEvents streams the log as Server-Sent Events: "id: N", "event:
// KIND", "data: JSON" per event. It starts after Last-Event-ID (a
// reconnecting EventSource sends it) or ?since=N (0: all the ring holds);
// with neither, with the next event. When the ring no longer holds events
// the client asked for, an "event: gap" with data
// {"Kind":"gap","Missed":N} comes first (without Missed when the ID is
// from before a restart of the daemon: IDs start at 1 on each start):
// reload the status.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	after := s.events.last()
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("since")
	}
	if from != "" {
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("since / Last-Event-ID %q: want an event ID (a number)", from))
			return
		}
		after = n
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("streaming unsupported"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		recs, missed, wake, closed := s.events.since(after)
		switch {
		case missed == unknownMissed:
			fmt.Fprintf(w, "event: %s\ndata: {\"Kind\":%q}\n\n", EventGap, EventGap)
		case missed > 0:
			fmt.Fprintf(w, "event: %s\ndata: {\"Kind\":%q,\"Missed\":%d}\n\n", EventGap, EventGap, missed)
		}
		for _, rec := range recs {
			b, err := json.Marshal(eventJSON(rec))
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", rec.id, rec.ev.Kind, b); err != nil {
				return // the client is gone
			}
			after = rec.id
		}
		if len(recs) > 0 || missed > 0 {
			flusher.Flush()
		}
		if closed {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-keepAlive.C:
			if _, err := fmt.Fprintf(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
