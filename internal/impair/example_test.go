package impair_test

import (
	"fmt"
	"time"

	"github.com/peersync/peersync/internal/impair"
)

// A Line is the forwarder's logic without sockets: it holds each frame for
// the link's delay and drops a random fraction. The clock is the caller's,
// so this runs anywhere, without root.
func ExampleLine() {
	l := impair.NewLine(impair.Link{Delay: 20 * time.Millisecond, Loss: 0.25}, 0, 1)
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 8 {
		l.Push(start.Add(time.Duration(i)*time.Millisecond), []byte{byte('a' + i)})
	}
	for _, at := range []time.Duration{10, 22, 40} {
		var got []string
		for _, f := range l.Pop(start.Add(at*time.Millisecond), nil, 0) {
			got = append(got, string(f))
		}
		fmt.Printf("at %2d ms: %v\n", at, got)
	}
	s := l.Stats()
	fmt.Printf("offered %d, lost %d, delivered %d\n", s.Offered, s.Lost, s.Delivered)
	// Output:
	// at 10 ms: []
	// at 22 ms: [a b c]
	// at 40 ms: [d e f h]
	// offered 8, lost 1, delivered 7
}
