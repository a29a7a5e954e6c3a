package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// uiDevice is one `desktop` process with its web UI, started as a new user
// would start it: a fresh home, a user home directory of its own (so the
// first-run folder ~/PeerSync is inside the test's temporary directory).
type uiDevice struct {
	name, home, folder string
	addr               string // the engine's UDP address
	url                string // the web UI, as the program printed it
	logs               *testutil.SyncBuffer
}

func startUIDevice(t *testing.T, bin, name string) *uiDevice {
	t.Helper()
	root := t.TempDir()
	d := &uiDevice{name: name, home: filepath.Join(root, "state"), folder: filepath.Join(root, "docs"), logs: &testutil.SyncBuffer{}}
	require.NoError(t, os.MkdirAll(d.folder, 0o755))
	port := testutil.FreeUDPPort(t)
	d.addr = fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--home", d.home, "run", "--listen", d.addr,
		"--ui", "127.0.0.1:0", "--scan-interval", "200ms", "--no-discovery")
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(root, "user"), "PEERSYNC_HOME=")
	d.url = startPrinting(t, cmd, name, d.logs, "web UI ")
	return d
}

// startPrinting starts cmd (a desktop process, stopped at cleanup) and
// returns the rest of the first line of its output that starts with
// prefix, e.g. the web UI's address after "web UI ".
func startPrinting(t *testing.T, cmd *exec.Cmd, name string, logs *testutil.SyncBuffer, prefix string) string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	found := make(chan string, 1)
	go func() { // copies stdout into the logs until the process ends
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				select {
				case found <- rest:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	stopAtCleanup(t, cmd, name, logs)
	select {
	case v := <-found:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s printed no %q line:\n%s", name, prefix, logs.String())
		return ""
	}
}

// needRoutes skips the rest of the test, loudly, when d's API lacks one of
// the routes ("METHOD /rest/..." as the OpenAPI document lists them): the
// steps before it have passed, the ones after it cannot run yet.
func (d *uiDevice) needRoutes(t *testing.T, routes ...string) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(d.home, "apikey"))
	require.NoError(t, err)
	req, err := http.NewRequest("GET", d.url+"/rest/openapi.json", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", strings.TrimSpace(string(key)))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var doc struct{ Paths map[string]map[string]any }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&doc))
	var missing []string
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		t.Skipf("LOUD SKIP: the steps before passed; the API has no %s yet", strings.Join(missing, ", "))
	}
}

// waitFile waits until path holds want ("" = until it is gone).
func waitFile(t *testing.T, path, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var got string
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		got = string(b)
		if (want == "" && os.IsNotExist(err)) || (want != "" && err == nil && got == want) {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling a file, with a deadline
	}
	t.Fatalf("%s: want %q, have %q after %v", path, want, got, limit)
}

// js quotes a Go string as a JavaScript string literal.
func js(s string) string { return fmt.Sprintf("%q", s) }

// set gives a form field a value as typing would (an input event follows).
func (b *browser) set(t *testing.T, sel, value string) {
	t.Helper()
	ok := eval[bool](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false;
		e.value = %s; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return true })()`, js(sel), js(value)))
	require.True(t, ok, "no field %s", sel)
}

// press clicks the button labelled text inside the element sel, once it is
// there and enabled.
func (b *browser) press(t *testing.T, sel, text string) {
	t.Helper()
	find := fmt.Sprintf(`[...document.querySelectorAll(%s + ' button')].find(x => x.textContent === %s && !x.disabled)`, js(sel), js(text))
	b.wait(t, fmt.Sprintf("button %q in %s", text, sel), "!!"+find, 30*time.Second)
	eval[bool](t, b, "("+find+").click() === undefined")
}

// has waits until the page's element sel contains text.
func (b *browser) has(t *testing.T, what, sel, text string, limit time.Duration) {
	t.Helper()
	b.wait(t, what, fmt.Sprintf(`(document.querySelector(%s) || {textContent: ''}).textContent.includes(%s)`, js(sel), js(text)), limit)
}

// TestUITwoDevices is issue #13's walk through the pages of two real
// desktop processes, as two people would do it with their browsers: A
// shares a folder with B under Send, B accepts A and the folder under
// Receive, files written on A reach B and its History (a file name that is
// HTML shown as text), a restore and an undelete from A's History reach B,
// and a Schedule window that excludes now holds a change back until "Sync
// now". With PEERSYNC_SCREENSHOTS=1 it saves every page into
// docs/screenshots/.
func TestUITwoDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two desktop processes and a browser")
	}
	chromiumPath(t)
	bin := testutil.BuildBinary(t, "./examples/desktop")
	a, bdev := startUIDevice(t, bin, "alpha"), startUIDevice(t, bin, "beta")
	br := newBrowser(t, 1280, 900)
	const long = 60 * time.Second

	// First run: both have the default folder and a name from Settings.
	for _, d := range []*uiDevice{a, bdev} {
		br.page(t, d.url, "status")
		br.has(t, "the first-run folder", "#status-folders", "PeerSync", 10*time.Second)
		br.page(t, d.url, "settings")
		br.set(t, "#set-name [name=name]", d.name)
		br.press(t, "#set-name", "Save")
		br.has(t, "the new name", "#nav-device", d.name, 10*time.Second)
	}
	bID := eval[string](t, br, `document.getElementById('set-id').textContent`)
	require.Len(t, bID, 63)
	br.screenshot(t, "settings")
	br.page(t, a.url, "settings")
	aID := eval[string](t, br, `document.getElementById('set-id').textContent`)

	// A shares a new folder, "Docs", and sends it to B.
	br.page(t, a.url, "status")
	br.press(t, ".card-head", "+ Add a folder")
	br.set(t, "#folder-add [name=label]", "Docs")
	br.set(t, "#folder-add [name=path]", a.folder)
	br.set(t, "#folder-add [name=id]", "docs")
	br.press(t, "#folder-add", "Add folder")
	br.has(t, "folder docs on A", "#status-folders", a.folder, 10*time.Second)

	br.page(t, a.url, "send")
	br.set(t, "#send-form [name=name]", "beta")
	br.set(t, "#send-form [name=addr]", bdev.addr)
	br.do(t, chromedp.SendKeys(chromedp.CSS(`#send-form textarea[name=key]`), bID))
	br.has(t, "the key accepted as typed", "#send-key-msg", "Device "+bID, 5*time.Second)
	br.set(t, "#send-folder-pick", "docs")
	eval[bool](t, br, `document.getElementById('send-folder-plus').click() === undefined`)
	br.wait(t, "docs among the folders to send", `!!document.querySelector('#send-folders [data-folder="docs"]')`, 5*time.Second)
	eval[bool](t, br, `document.getElementById('send-save').click() === undefined`)
	br.has(t, "beta among the recipients", "#send-peers", "beta", 10*time.Second)
	br.screenshot(t, "send")

	// B accepts A, then the folder A offers.
	bdev.needRoutes(t, "GET /rest/pending", "POST /rest/pending/devices/{device}/accept", "POST /rest/pending/folders/{id}/accept")
	br.page(t, bdev.url, "receive")
	sel := fmt.Sprintf(`[data-pending-device=%s]`, js(aID))
	br.wait(t, "A waiting on B's Receive page", fmt.Sprintf(`!!document.querySelector(%s)`, js(sel)), long)
	br.screenshot(t, "receive")
	br.press(t, sel, "Accept")
	offer := `[data-offer="docs"]`
	br.wait(t, "A's folder offered on B", fmt.Sprintf(`!!document.querySelector(%s)`, js(offer)), long)
	br.set(t, offer+" input", bdev.folder)
	br.press(t, offer, "Accept")
	br.page(t, bdev.url, "status")
	br.has(t, "docs on B", "#status-folders", bdev.folder, 10*time.Second)

	// Files written on A reach B and B's History; the HTML name stays text.
	writeFile(t, a.folder, "hello.txt", []byte("version 1\n"))
	writeFile(t, a.folder, hostile, []byte("not a tag\n"))
	waitFile(t, filepath.Join(bdev.folder, "hello.txt"), "version 1\n", long)
	waitFile(t, filepath.Join(bdev.folder, hostile), "not a tag\n", long)
	br.page(t, bdev.url, "history")
	br.set(t, "#hist-folder", "docs")
	br.has(t, "hello.txt in B's History", "#hist-list", "hello.txt", 10*time.Second)
	br.has(t, "the HTML file name as text in B's History", "#hist-list", hostile, 10*time.Second)
	assert.True(t, eval[bool](t, br, `document.querySelectorAll('main img:not(#set-qr)').length === 0`), "an element made from a file name")
	br.screenshot(t, "history")

	// A restores the first version from its History; B gets it.
	writeFile(t, a.folder, "hello.txt", []byte("version 2\n"))
	waitFile(t, filepath.Join(bdev.folder, "hello.txt"), "version 2\n", long)
	br.page(t, a.url, "history")
	br.set(t, "#hist-folder", "docs")
	br.set(t, "#hist-path", "hello.txt")
	br.wait(t, "the versions of hello.txt", `(rows => rows.length >= 2 && rows.every(tr => tr.dataset.path === 'hello.txt'))([...document.querySelectorAll('#hist-table tbody tr')])`, long)
	// The version to restore is the one whose content is version 1 (the
	// watcher may also have committed a file caught half-written).
	v1 := evalPromise[string](t, br, `(async () => {
		const key = document.querySelector('meta[name="peersync-key"]').content;
		for (const tr of document.querySelectorAll('#hist-table tbody tr')) {
			const r = await fetch('/rest/folders/docs/file?' + new URLSearchParams({rev: tr.dataset.rev, path: 'hello.txt'}), {headers: {'X-API-Key': key}});
			if (r.ok && await r.text() === 'version 1\n') return tr.dataset.rev;
		}
		return '';
	})()`)
	require.NotEmpty(t, v1, "no version of hello.txt holds version 1")
	br.press(t, fmt.Sprintf(`#hist-table tbody tr[data-rev=%s]`, js(v1)), "Restore this version")
	waitFile(t, filepath.Join(bdev.folder, "hello.txt"), "version 1\n", long)

	// A deletes it; Undelete in A's History brings it back on both.
	require.NoError(t, os.Remove(filepath.Join(a.folder, "hello.txt")))
	waitFile(t, filepath.Join(bdev.folder, "hello.txt"), "", long)
	br.set(t, "#hist-path", "")
	br.press(t, `#hist-table tbody tr[data-path="hello.txt"]`, "Undelete")
	waitFile(t, filepath.Join(bdev.folder, "hello.txt"), "version 1\n", long)

	// A window on A that excludes now: a change waits until Sync now.
	a.needRoutes(t, "GET /rest/schedule", "PUT /rest/schedule", "POST /rest/sync-now")
	now := time.Now()
	from, to := now.Add(2*time.Hour).Format("15:04"), now.Add(3*time.Hour).Format("15:04")
	br.page(t, a.url, "schedule")
	eval[bool](t, br, `(() => { const f = document.getElementById('sched-global'); f.always.checked = false; f.dispatchEvent(new Event('input', {bubbles: true})); return true })()`)
	br.set(t, "#sched-global [name=from]", from)
	br.set(t, "#sched-global [name=to]", to)
	br.press(t, "#sched-global", "Save schedule")
	br.page(t, a.url, "status")
	br.has(t, "the window closed on A", "#status-peers", "closed until "+from, long)
	writeFile(t, a.folder, "later.txt", []byte("after hours\n"))
	br.has(t, "later.txt committed on A", "#status-changes", "later.txt", long)
	br.has(t, "a change held back on A", "#status-peers", "waiting", long)
	br.screenshot(t, "status")
	_, err := os.Stat(filepath.Join(bdev.folder, "later.txt"))
	require.ErrorIs(t, err, os.ErrNotExist, "the window is closed: nothing may reach B")
	br.page(t, a.url, "schedule")
	br.screenshot(t, "schedule")
	br.press(t, "#sched-global", "Sync now")
	waitFile(t, filepath.Join(bdev.folder, "later.txt"), "after hours\n", long)

	// The phone-sized layout of the Status page.
	br.do(t, chromedp.EmulateViewport(390, 844))
	br.page(t, a.url, "status")
	br.screenshot(t, "status-phone")
	br.clean(t)
}
