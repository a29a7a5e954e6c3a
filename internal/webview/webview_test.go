package webview

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

func TestLoginBrowseDownloadHistory(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	base := f.srv.URL

	// Not logged in: every page leads to the login form, which brings the
	// user back afterwards.
	resp, err := noRedirect(c).Get(base + "/f/docs/tree/notes")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/login?next=%2Ff%2Fdocs%2Ftree%2Fnotes", resp.Header.Get("Location"))

	// A wrong password is refused, and says so.
	resp = f.login(t, c, "ann", "wrong password")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body(t, resp), "Wrong user name or password.")
	resp = f.login(t, c, "nobody", "correct horse")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp.Body.Close()

	// The right one sets a session cookie: __Host-, Secure, HttpOnly,
	// SameSite=Strict, expiring.
	resp, err = noRedirect(c).PostForm(base+"/login", url.Values{"user": {"ann"}, "password": {"correct horse"}, "next": {"/f/docs/tree/notes"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/f/docs/tree/notes", resp.Header.Get("Location"))
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	ck := cookies[0]
	assert.Equal(t, "__Host-peersync", ck.Name)
	assert.True(t, ck.Secure)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.Equal(t, "/", ck.Path)
	assert.Equal(t, 12*3600, ck.MaxAge)
	assert.GreaterOrEqual(t, len(ck.Value), 43, "32 random bytes")

	// The folder list shows the granted folder only.
	resp, page := get(t, c, base+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, `href="/f/docs/tree/"`)
	assert.Contains(t, page, "My &lt;docs&gt;", "the label, escaped")
	assert.NotContains(t, page, "secret")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	// Browse.
	_, page = get(t, c, base+"/f/docs/tree/")
	assert.Contains(t, page, "<h1>My &lt;docs&gt;</h1>")
	assert.True(t, contains(page, `href="/f/docs/tree/notes"`, `href="/f/docs/raw/a.txt"`, "5 B"), page)
	_, page = get(t, c, base+"/f/docs/tree/notes")
	assert.True(t, contains(page, `href="/f/docs/raw/notes/todo.txt"`, `href="/f/docs/history/notes/todo.txt"`), page)

	// Download.
	resp, data := get(t, c, base+"/f/docs/raw/notes/todo.txt")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "version two", data)
	assert.Equal(t, `attachment; filename=todo.txt`, resp.Header.Get("Content-Disposition"))
	assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))

	// History: two versions, newest first, who and when, each downloadable.
	_, page = get(t, c, base+"/f/docs/history/notes/todo.txt")
	assert.Equal(t, 2, strings.Count(page, `download>download</a>`), page)
	assert.Contains(t, page, "modify by ")
	assert.Contains(t, page, "add by ")
	oldURL := "/f/docs/raw/notes/todo.txt?rev=" + f.oldRev
	assert.Contains(t, page, `href="`+oldURL+`"`)
	_, data = get(t, c, base+oldURL)
	assert.Equal(t, "version one", data, "the old version")
	_, page = get(t, c, base+"/f/docs/tree/notes?rev="+f.oldRev)
	assert.Contains(t, page, `id="oldrev"`)
	assert.Contains(t, page, `href="/f/docs/raw/notes/todo.txt?rev=`+f.oldRev+`"`)

	// A folder not granted answers exactly as one that does not exist.
	_, missing := get(t, c, base+"/f/nope/tree/")
	for _, u := range []string{"/f/secret/tree/", "/f/secret/raw/keys.txt", "/f/secret/history/keys.txt", "/f/nope/tree/", "/f/docs/raw/gone.txt",
		"/f/docs/raw/..%2Fsecret", "/f/docs/tree/.peersync", "/f/docs/raw/notes/todo.txt?rev=" + strings.Repeat("0", 39) + "1", "/elsewhere"} {
		resp, page := get(t, c, base+u)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, u)
		assert.NotContains(t, page, "do not show", u)
		if strings.HasPrefix(u, "/f/secret/") {
			assert.Equal(t, missing, page, "%s looks like a folder that does not exist", u)
		}
	}
	resp, _ = get(t, c, base+"/f/docs/raw/notes?rev=zz")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Logging out ends the session.
	resp, err = c.PostForm(base+"/logout", nil)
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = noRedirect(c).Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestLoginThrottledPerAddressAndUser(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	for i := 0; i < freeFails; i++ {
		resp := f.login(t, c, "ann", "wrong password")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp.Body.Close()
	}
	// Now even the right password must wait, and is told how long.
	resp := f.login(t, c, "ann", "correct horse")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Contains(t, body(t, resp), "Too many failed attempts")

	// Each further failure doubles the wait.
	f.clock.Advance(time.Second)
	resp = f.login(t, c, "ann", "wrong again")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp.Body.Close()
	resp = f.login(t, c, "ann", "correct horse")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	resp.Body.Close()

	// Another address guessing ann's password is slowed too (the user's
	// key), and this address guessing another name (the address's key).
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/login", strings.NewReader("user=ann&password=correct+horse"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "[2001:db8::1]:5555"
	f.h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusTooManyRequests, rec.Code, "same user, other address")
	resp = f.login(t, c, "bob", "whatever pass")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "same address, other user")
	resp.Body.Close()

	// Once the wait is over the right password works, and clears the
	// record.
	f.clock.Advance(2 * time.Second)
	resp = f.login(t, c, "ann", "correct horse")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body(t, resp), `href="/f/docs/tree/"`)
	assert.Zero(t, f.h.throttle.wait(userKey("ann"), addrKey("127.0.0.1:1")))
}

func TestSessionEndsOnExpiryAndUserRemoval(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	resp := f.login(t, c, "ann", "correct horse")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	f.clock.Advance(12*time.Hour - time.Second)
	resp, _ = get(t, c, f.srv.URL+"/f/docs/tree/")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "still valid")
	f.clock.Advance(time.Second)
	resp, page := get(t, c, f.srv.URL+"/f/docs/tree/")
	assert.Contains(t, page, `id="password"`, "expired: the login form")
	assert.Equal(t, "/login", resp.Request.URL.Path)

	resp = f.login(t, c, "ann", "correct horse")
	resp.Body.Close()
	_, page = get(t, c, f.srv.URL+"/f/docs/tree/")
	assert.Contains(t, page, "a.txt")
	// Grants are read from the file at each request.
	_, err := f.users.Add("ann", "correct horse", []string{"secret"})
	require.NoError(t, err)
	resp, _ = get(t, c, f.srv.URL+"/f/docs/tree/")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "grant withdrawn")
	require.NoError(t, f.users.Remove("ann"))
	_, page = get(t, c, f.srv.URL+"/f/secret/tree/")
	assert.Contains(t, page, `id="password"`, "user removed: logged out")
}

func TestNamesEscapedAndCrossSiteRefused(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.docs, `<img src=x onerror=alert(1)>&"q".txt`, "x")
	_, err := f.e.Scan(t.Context(), "docs")
	require.NoError(t, err)
	c := f.client(t)
	resp := f.login(t, c, "ann", "correct horse")
	resp.Body.Close()
	_, page := get(t, c, f.srv.URL+"/f/docs/tree/")
	assert.NotContains(t, page, "<img")
	assert.Contains(t, page, "&lt;img src=x onerror=alert(1)&gt;&amp;&#34;q&#34;.txt")
	resp, data := get(t, c, f.srv.URL+"/f/docs/raw/"+url.PathEscape(`<img src=x onerror=alert(1)>&"q".txt`))
	assert.Equal(t, "x", data)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "sandbox")

	// A login form posted from another site is refused (login CSRF).
	req, err := http.NewRequest("POST", f.srv.URL+"/login", strings.NewReader("user=ann&password=correct+horse"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = noRedirect(f.client(t)).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Empty(t, resp.Cookies())

	// After login, next never leaves the site.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		assert.Equal(t, "/", localNext(next), next)
	}
}

func TestThrottleKeys(t *testing.T) {
	assert.Equal(t, addrKey("[2001:db8::1]:1"), addrKey("[2001:db8::ffff]:2"), "one /64")
	assert.NotEqual(t, addrKey("[2001:db8::1]:1"), addrKey("[2001:db8:0:1::1]:1"))
	assert.Equal(t, "addr:192.0.2.1", addrKey("[::ffff:192.0.2.1]:80"))
	clock := testutil.NewClock(time.Unix(0, 0))
	th := newThrottle(clock.Now)
	for i := 0; i < 30; i++ {
		th.fail("k")
	}
	assert.Equal(t, maxDelay, th.wait("k"), "capped")
	clock.Advance(maxDelay + forgetAfter + time.Second)
	th.fail("k")
	assert.Zero(t, th.wait("k"), "forgotten after an hour of silence")
}

// Guesses sent all at once are throttled too: the free failures are
// checked, plus at most one per other hashing slot (two slots: one) that
// was already verifying when the last free failure was recorded.
func TestParallelGuessesThrottled(t *testing.T) {
	f := newFixture(t)
	const n = 12
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/login", strings.NewReader("user=ann&password=guess"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = "192.0.2.7:1234"
			f.h.ServeHTTP(rec, req)
			codes <- rec.Code
		}()
	}
	checked := 0
	for i := 0; i < n; i++ {
		if <-codes == http.StatusUnauthorized {
			checked++
		}
	}
	assert.GreaterOrEqual(t, checked, freeFails)
	assert.LessOrEqual(t, checked, freeFails+cap(f.h.hashing)-1, "passwords checked before the wait applied")
}
