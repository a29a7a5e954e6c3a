package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/term"

	"github.com/peersync/peersync/sync"
)

// Progress of long CLI operations (a first scan of a big folder, bundle
// export and import), shown on stderr: on a terminal one line redrawn in
// place, a bar when the total is known and a spinner otherwise; anywhere
// else (a pipe, a file, a CI log) a plain line now and then and a last one
// at the end, so a log holds a few lines, not thousands of redraws.

// Paces of the two kinds of output.
const (
	ttyEvery   = 100 * time.Millisecond
	plainEvery = 2 * time.Second
)

// terminal is implemented by writers that know whether they are a
// terminal; tests use it to stand in for one.
type terminal interface{ IsTerminal() bool }

// isTerminal reports whether w is a terminal that can redraw a line: a
// *os.File on a terminal (and TERM is not "dumb"), or a writer saying so.
func isTerminal(w io.Writer) bool {
	w = unlocked(w)
	if t, ok := w.(terminal); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// termWidth is w's width in columns (80 when unknown).
func termWidth(w io.Writer) int {
	if f, ok := unlocked(w).(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			return cols
		}
	}
	return 80
}

// meter shows one operation's progress on w. Safe for concurrent use.
type meter struct {
	mu    gosync.Mutex
	w     io.Writer
	tty   bool
	width int
	label string
	total int64 // bytes; 0 = not known
	now   func() time.Time
	start time.Time
	last  time.Time // of the last line drawn; zero = none yet
	spin  int
	drawn bool // a line is on the terminal, not yet ended
	ended bool // finish or abandon was called
	done  int64
	note  string // what goes after the bytes ("1,234 files")
}

// newMeter returns a meter for label on a.stderr with total bytes (0 when
// not known).
func (a *app) newMeter(label string, total int64) *meter {
	return newMeterOn(a.stderr, label, total, time.Now)
}

func newMeterOn(w io.Writer, label string, total int64, now func() time.Time) *meter {
	m := &meter{w: w, tty: isTerminal(w), label: label, total: total, now: now}
	m.width = 80
	if m.tty {
		m.width = termWidth(w)
	}
	m.start = now()
	return m
}

// set records done bytes and note, and draws if it is time.
func (m *meter) set(done int64, note string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done, m.note = done, note
	if m.ended {
		return
	}
	every := plainEvery
	if m.tty {
		every = ttyEvery
	}
	now := m.now()
	if m.last.IsZero() && now.Sub(m.start) < every || !m.last.IsZero() && now.Sub(m.last) < every {
		return
	}
	m.last = now
	m.drawLocked(now, false)
}

// add counts n more bytes.
func (m *meter) add(n int64) {
	m.mu.Lock()
	done, note := m.done+int64(n), m.note
	m.mu.Unlock()
	m.set(done, note)
}

// finish draws the last state and ends the line; quiet leaves out the
// last line when nothing was drawn before (an operation too short to
// need progress).
func (m *meter) finish(quiet bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended || quiet && m.last.IsZero() {
		m.ended = true
		return
	}
	m.ended = true
	m.drawLocked(m.now(), true)
}

// abandon ends a line left on the terminal without a last state (the
// operation failed: its error follows on a line of its own). After
// finish it does nothing.
func (m *meter) abandon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ended && m.drawn {
		fmt.Fprint(m.w, "\n")
	}
	m.ended = true
}

// drawLocked writes the current line: redrawn in place on a terminal,
// appended otherwise.
func (m *meter) drawLocked(now time.Time, final bool) {
	secs := now.Sub(m.start).Seconds()
	stats := formatBytes(m.done)
	if m.total > 0 {
		stats += " of " + formatBytes(m.total)
	}
	if m.note != "" {
		stats += ", " + m.note
	}
	if secs > 0 && m.done > 0 {
		stats += fmt.Sprintf(", %s", formatRate(int64(float64(m.done)/secs)))
		if m.total > m.done && !final {
			eta := time.Duration(float64(m.total-m.done) / (float64(m.done) / secs) * float64(time.Second))
			stats += ", " + eta.Round(time.Second).String() + " left"
		}
	}
	if final {
		stats += ", done in " + now.Sub(m.start).Round(time.Millisecond*100).String()
	}
	if !m.tty {
		pct := ""
		if m.total > 0 {
			pct = fmt.Sprintf(" %d%%", percent(m.done, m.total))
		}
		fmt.Fprintf(m.w, "%s:%s %s\n", m.label, pct, stats)
		return
	}
	var line string
	switch {
	case m.total > 0:
		// The stats come first: the bar takes what is left, 5 to 40.
		barW := max(5, min(40, m.width-1-len(m.label)-len(stats)-9))
		p := percent(m.done, m.total)
		fill := barW * p / 100
		line = fmt.Sprintf("%s [%s%s] %3d%% %s", m.label, strings.Repeat("=", fill), strings.Repeat(" ", barW-fill), p, stats)
	case final:
		line = fmt.Sprintf("%s %s", m.label, stats)
	default:
		line = fmt.Sprintf("%s %c %s", m.label, `|/-\`[m.spin%4], stats)
		m.spin++
	}
	if len(line) > m.width-1 {
		line = line[:m.width-1]
	}
	// \r to the line's start, the line, then erase what a longer line left.
	fmt.Fprintf(m.w, "\r%s\x1b[K", line)
	m.drawn = true
	if final {
		fmt.Fprint(m.w, "\n")
		m.drawn = false
	}
}

func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(min(100, done*100/total))
}

// countingWriter counts what goes through it into a meter.
type countingWriter struct {
	w io.Writer
	m *meter
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.m.add(int64(n))
	return n, err
}

// countingReader counts what is read through it into a meter.
type countingReader struct {
	r io.Reader
	m *meter
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.add(int64(n))
	return n, err
}

// followScan shows the progress of folder id's scan, read from the
// engine's status (FolderStatus.Scan: files and bytes read so far, set
// once a scan has run for a second) at each tick, until the returned stop
// is called; stop draws the last line if any was drawn.
func followScan(ctx context.Context, m *meter, id string, status func(context.Context) (sync.Status, error), tick <-chan time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var files, bytes int64
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
			st, err := status(ctx)
			if err != nil {
				continue // the scan's own result says what went wrong
			}
			for _, f := range st.Folders {
				if f.ID == id && f.Scan != nil {
					files, bytes = f.Scan.Files, f.Scan.Bytes
					m.set(bytes, fmt.Sprintf("%d files read", files))
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		m.finish(true)
	}
}
