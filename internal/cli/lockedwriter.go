package cli

import (
	"io"
	gosync "sync"
)

// lockedWriter serialises writes to w. A daemon prints to its stdout and
// stderr from several goroutines (the logger from the event loop, the
// "stopped" line from Run's): an *os.File takes that, but a writer handed
// to Run by an embedding program or a test (a bytes.Buffer) would not.
type lockedWriter struct {
	mu gosync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// locked wraps w in a lockedWriter, once.
func locked(w io.Writer) io.Writer {
	if _, ok := w.(*lockedWriter); ok {
		return w
	}
	return &lockedWriter{w: w}
}
