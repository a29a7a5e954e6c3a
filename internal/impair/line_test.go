package impair

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestLineDelaysInOrder(t *testing.T) {
	l := NewLine(Link{Delay: 20 * time.Millisecond}, 0, 1)
	for i := range 100 {
		if !l.Push(t0.Add(time.Duration(i)*time.Millisecond), []byte{byte(i)}) {
			t.Fatalf("frame %d refused", i)
		}
	}
	if got := l.Pop(t0.Add(19*time.Millisecond), nil, 0); len(got) != 0 {
		t.Fatalf("%d frames left before their delay", len(got))
	}
	next, ok := l.Next()
	if !ok || !next.Equal(t0.Add(20*time.Millisecond)) {
		t.Fatalf("Next = %v, %v; want t0+20ms", next, ok)
	}
	var out [][]byte
	for ms := 20; ms < 130; ms++ {
		got := l.Pop(t0.Add(time.Duration(ms)*time.Millisecond), nil, 0)
		if want := min(1, max(0, 120-ms)); len(got) != want {
			t.Fatalf("at %d ms: %d frames due, want %d", ms, len(got), want)
		}
		out = append(out, got...)
	}
	for i, f := range out {
		if !bytes.Equal(f, []byte{byte(i)}) {
			t.Fatalf("frame %d is %v: order not kept", i, f)
		}
	}
	if _, ok := l.Next(); ok {
		t.Fatal("Line not empty")
	}
}

func TestLineCopiesFrames(t *testing.T) {
	l := NewLine(Link{}, 0, 1)
	buf := []byte("abc")
	l.Push(t0, buf)
	copy(buf, "xyz")
	got := l.Pop(t0, nil, 0)
	if len(got) != 1 || string(got[0]) != "abc" {
		t.Fatalf("got %q, want the frame as pushed", got)
	}
	l.Recycle(got)
	l.Push(t0, []byte("de"))
	if got := l.Pop(t0, nil, 0); string(got[0]) != "de" {
		t.Fatalf("recycled buffer gave %q", got[0])
	}
}

func TestLinePopMax(t *testing.T) {
	l := NewLine(Link{}, 0, 1)
	for range 10 {
		l.Push(t0, []byte{1})
	}
	if got := l.Pop(t0, nil, 4); len(got) != 4 {
		t.Fatalf("Pop(max 4) gave %d", len(got))
	}
	if n, b := l.Len(); n != 6 || b != 6 {
		t.Fatalf("Len = %d, %d; want 6, 6", n, b)
	}
}

func TestLineLossFraction(t *testing.T) {
	for _, p := range []float64{0, 0.01, 0.05, 0.5, 1} {
		l := NewLine(Link{Loss: p}, 0, 42)
		const n = 100000
		for range n {
			l.Push(t0, []byte{0})
			l.Recycle(l.Pop(t0, nil, 0))
		}
		s := l.Stats()
		got := float64(s.Lost) / n
		// Binomial: within 5 standard deviations (and exact at 0 and 1).
		tol := 5 * math.Sqrt(p*(1-p)/n)
		if math.Abs(got-p) > tol {
			t.Errorf("loss %v: dropped %v of frames (tolerance %v)", p, got, tol)
		}
		if s.Offered != n || s.Lost+s.Delivered != n {
			t.Errorf("loss %v: stats don't add up: %+v", p, s)
		}
	}
}

func TestLineSameSeedSameDrops(t *testing.T) {
	a, b := NewLine(Link{Loss: 0.3}, 0, 7), NewLine(Link{Loss: 0.3}, 0, 7)
	for i := range 1000 {
		if a.Push(t0, []byte{0}) != b.Push(t0, []byte{0}) {
			t.Fatalf("frame %d: same seed, different fate", i)
		}
	}
}

func TestLineDropTail(t *testing.T) {
	l := NewLine(Link{Delay: time.Second}, 10_000, 1)
	frame := make([]byte, 1500)
	accepted := 0
	for range 10 {
		if l.Push(t0, frame) {
			accepted++
		}
	}
	if accepted != 6 {
		t.Fatalf("accepted %d frames of 1500 B into 10000 B; want 6", accepted)
	}
	if s := l.Stats(); s.Overflow != 4 || s.MaxQueued != 9000 {
		t.Fatalf("stats %+v; want 4 overflows, 9000 B max", s)
	}
	// Once the queue drains, frames are accepted again.
	l.Pop(t0.Add(time.Second), nil, 0)
	if !l.Push(t0.Add(time.Second), frame) {
		t.Fatal("frame refused after the queue drained")
	}
}

func TestLineNoLossPush(t *testing.T) {
	l := NewLine(Link{Loss: 1}, 0, 1)
	if l.Push(t0, []byte{1}) {
		t.Fatal("Push with loss 1 kept a frame")
	}
	if !l.PushNoLoss(t0, []byte{2}) {
		t.Fatal("PushNoLoss dropped a frame")
	}
}

func BenchmarkLine(b *testing.B) {
	l := NewLine(Link{Delay: time.Millisecond, Loss: 0.01}, 0, 1)
	frame := make([]byte, 1514)
	out := make([][]byte, 0, 64)
	now := t0
	b.SetBytes(int64(len(frame)))
	for i := 0; b.Loop(); i++ {
		l.Push(now, frame)
		if i%64 == 63 {
			now = now.Add(time.Millisecond)
			out = l.Pop(now, out[:0], 64)
			l.Recycle(out)
		}
	}
	_ = fmt.Sprint(l.Stats())
}
