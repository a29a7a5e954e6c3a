package webview

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxLoginForm bounds a login request's body.
const maxLoginForm = 8 << 10

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.currentUser(r); ok {
		http.Redirect(w, r, localNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, http.StatusOK, page{Heading: "Log in", Login: &loginData{Next: localNext(r.URL.Query().Get("next"))}})
}

// localNext keeps a post-login redirect on this site: a path, never
// another origin ("//host", "/\host" or a scheme).
func localNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// sameOrigin refuses a POST that a browser says comes from another site
// (login CSRF: making a victim's browser log into the attacker's account).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or an old one: SameSite still guards the session
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.fail(w, r, User{}, http.StatusForbidden, "This form may only be sent from this site.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, User{}, http.StatusBadRequest, "The form could not be read.")
		return
	}
	name, pass := r.PostForm.Get("user"), r.PostForm.Get("password")
	next := localNext(r.PostForm.Get("next"))
	keys := []string{addrKey(r.RemoteAddr), userKey(name)}
	retry := func(status int, msg string) {
		h.render(w, status, page{Heading: "Log in", Login: &loginData{Next: next, User: name}, Error: msg})
	}
	// The delay is checked, the password verified and a failure recorded
	// while holding a hashing slot, so parallel guesses cannot all pass the
	// check before the first failure is recorded.
	select {
	case h.hashing <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	if d := h.throttle.wait(keys...); d > 0 {
		<-h.hashing
		secs := int((d + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		h.opts.Log.Warn("webview: login refused, too many failures", "addr", r.RemoteAddr, "user", name, "wait", d)
		retry(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", secs))
		return
	}
	u, ok, err := h.opts.Users.Verify(name, pass)
	if ok {
		h.throttle.ok(keys...)
	} else {
		h.throttle.fail(keys...)
	}
	<-h.hashing
	if err != nil {
		h.opts.Log.Error("webview: login", "user", name, "err", err)
	}
	if !ok {
		h.opts.Log.Warn("webview: login failed", "addr", r.RemoteAddr, "user", name)
		retry(http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	tok, exp := h.sess.create(u.Name)
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: tok, Path: "/", Expires: exp,
		MaxAge: int(h.opts.SessionTTL / time.Second), HttpOnly: true, Secure: h.opts.Secure, SameSite: http.SameSiteStrictMode})
	h.opts.Log.Info("webview: login", "addr", r.RemoteAddr, "user", u.Name)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.fail(w, r, User{}, http.StatusForbidden, "This form may only be sent from this site.")
		return
	}
	if c, err := r.Cookie(h.cookieName()); err == nil {
		h.sess.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.opts.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
