package impair

import (
	"math/rand/v2"
	"time"
)

// DefaultQueueLimit is the bytes a Line holds in flight when its limit is
// zero: beyond it, arriving frames are dropped (drop-tail).
const DefaultQueueLimit = 16 << 20

// Link is the impairment of one direction of a wire.
type Link struct {
	// Delay is the one-way delay every frame is held for.
	Delay time.Duration
	// Loss is the probability, from 0 to 1, that a frame is dropped,
	// independently of every other frame.
	Loss float64
}

// LineStats counts what a Line did with the frames offered to it.
type LineStats struct {
	// Offered is every frame passed to Push.
	Offered uint64
	// Lost is the frames dropped at random (Link.Loss).
	Lost uint64
	// Overflow is the frames dropped because the queue was full.
	Overflow uint64
	// Delivered is the frames returned by Pop.
	Delivered uint64
	// MaxQueued is the largest number of bytes ever in flight.
	MaxQueued int
}

// frame is one queued frame and the time it is due to leave.
type frame struct {
	due  time.Time
	data []byte
}

// Line is one direction of a wire without any socket: a FIFO delay line
// that drops a random fraction of the frames pushed into it, holds the rest
// for the link's delay, and drops frames that would take it past its byte
// limit. Since every frame is held for the same delay, frames leave in the
// order they arrived. The caller supplies the clock, so a Line is
// deterministic given its seed and can be tested without root or sleeping.
//
// A Line is not safe for concurrent use; the wire guards it with a mutex.
type Line struct {
	link  Link
	limit int
	rng   *rand.Rand

	q      []frame // ring buffer
	head   int     // index of the oldest frame
	n      int     // frames queued
	queued int     // bytes queued
	free   [][]byte
	stats  LineStats
}

// NewLine returns an empty Line for link that holds at most limit bytes
// (zero: DefaultQueueLimit). Its random drops are drawn from a generator
// seeded with seed, so two Lines with one seed drop the same frames.
func NewLine(link Link, limit int, seed uint64) *Line {
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	return &Line{
		link:  link,
		limit: limit,
		rng:   rand.New(rand.NewPCG(seed, 0x696d70616972)), // "impair"
		q:     make([]frame, 64),
	}
}

// Push offers a frame that arrived at now. It reports whether the frame was
// queued; if so, the Line keeps a copy, and data may be reused at once.
func (l *Line) Push(now time.Time, data []byte) bool {
	l.stats.Offered++
	if l.link.Loss > 0 && l.rng.Float64() < l.link.Loss {
		l.stats.Lost++
		return false
	}
	return l.enqueue(now, data)
}

// PushNoLoss is Push exempt from random loss (still delayed and bounded):
// for frames that a real path would not lose at this point, such as ARP.
func (l *Line) PushNoLoss(now time.Time, data []byte) bool {
	l.stats.Offered++
	return l.enqueue(now, data)
}

func (l *Line) enqueue(now time.Time, data []byte) bool {
	if l.queued+len(data) > l.limit {
		l.stats.Overflow++
		return false
	}
	if l.n == len(l.q) {
		grown := make([]frame, 2*len(l.q))
		for i := range l.n {
			grown[i] = l.q[(l.head+i)%len(l.q)]
		}
		l.q, l.head = grown, 0
	}
	l.q[(l.head+l.n)%len(l.q)] = frame{due: now.Add(l.link.Delay), data: append(l.buffer(len(data)), data...)}
	l.n++
	l.queued += len(data)
	l.stats.MaxQueued = max(l.stats.MaxQueued, l.queued)
	return true
}

// buffer returns an empty slice with room for n bytes, recycled if it can.
func (l *Line) buffer(n int) []byte {
	for len(l.free) > 0 {
		b := l.free[len(l.free)-1]
		l.free = l.free[:len(l.free)-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, max(n, 2048))
}

// Pop appends to dst the frames due at now, oldest first, at most max of
// them (max <= 0: all), and returns dst. The frames belong to the caller,
// who may hand them back with Recycle once sent.
func (l *Line) Pop(now time.Time, dst [][]byte, max int) [][]byte {
	for got := 0; l.n > 0 && (max <= 0 || got < max); got++ {
		f := &l.q[l.head]
		if f.due.After(now) {
			break
		}
		dst = append(dst, f.data)
		l.queued -= len(f.data)
		*f = frame{}
		l.head = (l.head + 1) % len(l.q)
		l.n--
		l.stats.Delivered++
	}
	return dst
}

// Next returns when the oldest queued frame is due, and false if the Line
// is empty.
func (l *Line) Next() (time.Time, bool) {
	if l.n == 0 {
		return time.Time{}, false
	}
	return l.q[l.head].due, true
}

// Len returns the number of frames and bytes queued.
func (l *Line) Len() (frames, bytes int) { return l.n, l.queued }

// Recycle hands back frames returned by Pop, for reuse by later Pushes.
func (l *Line) Recycle(frames [][]byte) {
	for _, b := range frames {
		if len(l.free) < 4096 && cap(b) <= 1<<16 {
			l.free = append(l.free, b)
		}
	}
}

// Stats returns the counters so far.
func (l *Line) Stats() LineStats { return l.stats }
