package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
	"github.com/peersync/peersync/sync"
)

// fakeTTY is a buffer that says it is a terminal (the detector a real
// terminal's *os.File answers through term.IsTerminal).
type fakeTTY struct{ bytes.Buffer }

func (*fakeTTY) IsTerminal() bool { return true }

// On a terminal: one line redrawn in place (\r ... erase to the end of
// the line), a bar with the percentage, paced, ended by a newline.
func TestMeterOnTerminal(t *testing.T) {
	var w fakeTTY
	clk := testutil.NewClock(time.Unix(1e9, 0))
	m := newMeterOn(&w, "bundle import x.bundle", 1000, clk.Now)
	m.set(10, "")
	assert.Empty(t, w.String(), "too early to draw")
	clk.Advance(time.Second)
	m.set(250, "")
	out := w.String()
	assert.True(t, strings.HasPrefix(out, "\rbundle import x.bundle ["), "%q", out)
	assert.Contains(t, out, " 25% 250 B of 1.0 KB, 250 B/s, 3s left\x1b[K")
	bar := regexp.MustCompile(`\[(=*)( *)\]`).FindStringSubmatch(out)
	require.NotNil(t, bar, out)
	assert.Equal(t, (len(bar[1])+len(bar[2]))/4, len(bar[1]), "a quarter of the bar: %q", out)
	assert.LessOrEqual(t, len(out)-len("\r\x1b[K"), 79, "fits in 80 columns")
	clk.Advance(50 * time.Millisecond)
	m.set(300, "")
	assert.Equal(t, out, w.String(), "redrawn at most every 100 ms")
	clk.Advance(time.Second)
	m.add(700)
	m.finish(false)
	lines := strings.Split(w.String(), "\r")
	last := lines[len(lines)-1]
	assert.Contains(t, last, "100% 1.0 KB of 1.0 KB")
	assert.Contains(t, last, "done in 2.1s")
	assert.True(t, strings.HasSuffix(last, "\x1b[K\n"), "%q", last)
	assert.Equal(t, 1, strings.Count(w.String(), "\n"), "one line, redrawn")
	m.abandon()
	assert.Equal(t, 1, strings.Count(w.String(), "\n"), "abandon after finish adds nothing")

	// Total unknown: a spinner; abandoned (an error follows) ends the line.
	w.Reset()
	m = newMeterOn(&w, "bundle export docs", 0, clk.Now)
	clk.Advance(time.Second)
	m.set(5000, "")
	assert.Contains(t, w.String(), "\rbundle export docs | 5.0 KB, 5.0 KB/s\x1b[K")
	m.abandon()
	assert.True(t, strings.HasSuffix(w.String(), "\n"))
}

// Elsewhere: plain lines, no carriage return or escape, at most every 2 s,
// and a last line.
func TestMeterPlainLines(t *testing.T) {
	var w bytes.Buffer
	clk := testutil.NewClock(time.Unix(1e9, 0))
	m := newMeterOn(&w, "scan docs", 0, clk.Now)
	for i := 1; i <= 50; i++ { // 5 s in steps of 100 ms
		clk.Advance(100 * time.Millisecond)
		m.set(int64(i)*1000, "files")
	}
	m.finish(true)
	out := w.String()
	assert.NotContains(t, out, "\r")
	assert.NotContains(t, out, "\x1b")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, "at 2 s, at 4 s, and the last: %q", out)
	assert.Equal(t, "scan docs: 20.0 KB, files, 10.0 KB/s", lines[0])
	assert.Equal(t, "scan docs: 50.0 KB, files, 10.0 KB/s, done in 5s", lines[2])

	// Quiet: an operation that ended before its first line shows nothing.
	w.Reset()
	m = newMeterOn(&w, "scan docs", 0, clk.Now)
	m.set(1, "")
	m.finish(true)
	assert.Empty(t, w.String())
}

// followScan reads the scan's progress from the engine's status at each
// tick and shows it; the last line comes when the scan ends.
func TestFollowScan(t *testing.T) {
	var w bytes.Buffer
	clk := testutil.NewClock(time.Unix(1e9, 0))
	m := newMeterOn(&w, "scan docs", 0, clk.Now)
	steps := make(chan sync.Status)
	status := func(ctx context.Context) (sync.Status, error) {
		select {
		case st := <-steps:
			return st, nil
		case <-ctx.Done():
			return sync.Status{}, ctx.Err()
		}
	}
	tick := make(chan time.Time)
	stop := followScan(context.Background(), m, "docs", status, tick)
	for _, sp := range []*sync.ScanProgress{nil, {Files: 10, Bytes: 3e6}, {Files: 20, Bytes: 6e6}} {
		clk.Advance(3 * time.Second)
		tick <- clk.Now()
		steps <- sync.Status{Folders: []sync.FolderStatus{{FolderConfig: sync.FolderConfig{ID: "other"}}, {FolderConfig: sync.FolderConfig{ID: "docs"}, Scan: sp}}}
	}
	stop()
	out := w.String()
	assert.Contains(t, out, "scan docs: 3.0 MB, 10 files read")
	assert.Contains(t, out, "scan docs: 6.0 MB, 20 files read")
	assert.Contains(t, out, "done in 9s")
}

// The commands: bundle export and import show progress on stderr, a bar
// on a terminal and plain lines elsewhere; stdout is unchanged.
func TestCLIBundleProgress(t *testing.T) {
	homeA, a := setupFolder(t)
	homeB, _ := setupFolder(t)
	require.NoError(t, os.WriteFile(filepath.Join(a, "one.txt"), []byte("one"), 0o644))
	file := filepath.Join(t.TempDir(), "docs.bundle")

	var out bytes.Buffer
	var tty fakeTTY
	require.NoError(t, Run(context.Background(), testProgram, []string{"--home", homeA, "bundle", "export", "--folder", "docs", file}, &out, &tty))
	assert.Contains(t, out.String(), "exported docs head")
	assert.NotContains(t, out.String(), "\r")
	assert.Regexp(t, `\rbundle export docs \d+ B, \S+ \S+/s, done in \S+\x1b\[K\n$`, tty.String())
	assert.Equal(t, 1, strings.Count(tty.String(), "\n"), "one line, redrawn in place")

	fi, err := os.Stat(file)
	require.NoError(t, err)
	out.Reset()
	var plain bytes.Buffer
	require.NoError(t, Run(context.Background(), testProgram, []string{"--home", homeB, "bundle", "import", "--folder", "docs", file}, &out, &plain))
	assert.Contains(t, out.String(), "imported ")
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	last := lines[len(lines)-1] // one line, unless the machine is slow enough for a line every 2 s
	assert.Equal(t, "bundle import docs.bundle: 100% "+humanBytes(fi.Size())+" of "+humanBytes(fi.Size()), strings.SplitN(last, ",", 2)[0])
	assert.Contains(t, last, "done in")
	assert.NotContains(t, plain.String(), "\r")
	assert.NotContains(t, plain.String(), "\x1b")

	// A refused bundle: the line is ended, the error is the command's.
	require.NoError(t, os.WriteFile(file, []byte("# v2 git bundle\nnot a bundle"), 0o644))
	tty.Reset()
	err = Run(context.Background(), testProgram, []string{"--home", homeB, "bundle", "import", "--folder", "docs", file}, &out, &tty)
	require.Error(t, err)
	assert.NotContains(t, tty.String(), "done in")
}
