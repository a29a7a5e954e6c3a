package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browser is one headless Chromium tab driven by chromedp, with what the
// page reported that a test must not miss: uncaught exceptions, console
// errors (CSP violations are reported there) and JavaScript dialogs (an
// alert() would mean injected script ran).
type browser struct {
	ctx context.Context

	mu       gosync.Mutex
	problems []string
}

// chromiumPath finds Debian's chromium (or Chrome); the browser tests skip
// without one.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on this machine (Debian: apt-get install chromium)")
	return ""
}

// newBrowser starts a headless browser with a width×height window for the
// rest of the test.
func newBrowser(t *testing.T, width, height int) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.WindowSize(width, height),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				p += " " + ex.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				p = "console error"
				for _, a := range ev.Args {
					p += " " + string(a.Value) + a.Description
				}
			}
		case *page.EventJavascriptDialogOpening:
			p = "dialog opened: " + ev.Message
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	}))
	return b
}

// do runs steps with a bound.
func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// wait waits (bounded) until the JavaScript expression is true.
func (b *browser) wait(t *testing.T, what, expr string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(100*time.Millisecond)))
	require.NoError(t, err, "waiting for %s (%s)", what, expr)
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// waitLoad is wait across a page load (a form posted, a link followed):
// the expression is evaluated again in whatever page is there, until it is
// true or the limit passes.
func (b *browser) waitLoad(t *testing.T, what, expr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond) // polling the page, with a deadline
	}
	t.Fatalf("waiting for %s (%s): %v", what, expr, last)
}

// evalPromise evaluates a JavaScript expression whose value is a promise
// and returns what it resolves to.
func evalPromise[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, expr)
	return v
}

// page opens a page of the UI and waits until it has rendered its data.
func (b *browser) page(t *testing.T, base, name string) {
	t.Helper()
	// A query makes every visit a fresh load (a change of the hash alone
	// would not load the page, and chromedp.Navigate waits for a load).
	b.do(t, chromedp.Navigate(base+"/?"+name+"#/"+name))
	b.wait(t, name+" page", `document.body.dataset.ready === "`+name+`"`, 30*time.Second)
}

// screenshot saves the page as docs/screenshots/NAME.png when the
// environment asks for it (PEERSYNC_SCREENSHOTS=1, as `go generate` and the
// CI do), so that a plain test run does not rewrite tracked files.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("PEERSYNC_SCREENSHOTS") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := filepath.Join("..", "..", "docs", "screenshots")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// clean fails the test if the page reported a problem.
func (b *browser) clean(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.problems, "the page reported problems")
}
