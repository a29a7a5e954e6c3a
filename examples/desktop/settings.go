package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/internal/atomicfile"
	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/internal/webview"
	"github.com/peersync/peersync/sync"
)

// The desktop's own settings, beside the engine's (GET and PUT
// /rest/settings): the LAN phone view (on or off, its address, its
// accounts) and the restart that applies a new listen address. They are
// the desktop's, not the SDK's, so they are served by the UI under
// /desktop/, with the same Host check and API key as /rest/.

// phoneViewFile is the phone view's saved settings in the home.
const phoneViewFile = "lanview.json"

// defaultPhoneViewAddr is where the phone view goes when the Settings page
// turns it on with no address: every interface, the UI's port plus one.
const defaultPhoneViewAddr = ":44998"

// phoneViewConfig is lanview.json, and the body of PUT /desktop/lanview.
type phoneViewConfig struct {
	Enabled bool   `json:"enabled"`
	Addr    string `json:"addr"`
}

// phoneViewStatus is GET /desktop/lanview.
type phoneViewStatus struct {
	phoneViewConfig
	// URL is where the view answers now; "" while off.
	URL string `json:"url"`
	// Users are the names of the view's accounts.
	Users []string `json:"users"`
}

// fieldError is the desktop routes' 400: the error and the field it is
// about (as PUT /rest/settings answers).
type fieldError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// phoneView runs the LAN phone view (serveLANView) and turns it on, off,
// or to another address while the desktop runs. The settings saved in
// lanview.json win over --lan-view, as the engine's saved settings win
// over its flags.
type phoneView struct {
	ctx context.Context // the daemon's: the view ends with it
	env cli.Env

	mu    gosync.Mutex // guards the fields below and serialises changes
	conf  phoneViewConfig
	stop  func() // stops the running view; nil while off
	bound string // its address while on
}

// startPhoneView loads lanview.json (else takes flagAddr, --lan-view: on
// when not empty) and starts the view if it is on.
func startPhoneView(ctx context.Context, env cli.Env, flagAddr string) (*phoneView, error) {
	v := &phoneView{ctx: ctx, env: env, conf: phoneViewConfig{Enabled: flagAddr != "", Addr: flagAddr}}
	b, err := os.ReadFile(filepath.Join(env.Home, phoneViewFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &v.conf); err != nil {
			return nil, fmt.Errorf("%s is corrupt (fix or remove it): %w", filepath.Join(env.Home, phoneViewFile), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if v.conf.Addr == "" {
		v.conf.Addr = defaultPhoneViewAddr
	}
	if v.conf.Enabled {
		if err := v.startLocked(v.conf.Addr); err != nil {
			return nil, fmt.Errorf("LAN view on %s: %w", v.conf.Addr, err)
		}
	}
	return v, nil
}

// startLocked starts the view on addr and stops the one running before
// (only once the new one listens). v.mu must be held.
func (v *phoneView) startLocked(addr string) error {
	stop, bound, err := serveLANView(v.ctx, v.env, addr)
	if err != nil {
		return err
	}
	v.stopLocked()
	v.stop, v.bound = stop, bound
	fmt.Fprintf(v.env.Stdout, "LAN view http://%s\n", bound)
	return nil
}

func (v *phoneView) stopLocked() {
	if v.stop != nil {
		v.stop()
		v.stop, v.bound = nil, ""
	}
}

// Close stops the view.
func (v *phoneView) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopLocked()
}

// set applies c (starting, moving or stopping the view) and saves it. An
// address that is not valid or cannot be listened on is a fieldError for
// "addr", and changes nothing.
func (v *phoneView) set(c phoneViewConfig) *fieldError {
	if c.Addr == "" {
		c.Addr = defaultPhoneViewAddr
	}
	if err := checkListenAddr(c.Addr); err != nil {
		return &fieldError{Error: err.Error(), Field: "addr"}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case !c.Enabled:
		v.stopLocked()
	case v.stop == nil || c.Addr != v.conf.Addr:
		if err := v.startLocked(c.Addr); err != nil {
			return &fieldError{Error: err.Error(), Field: "addr"}
		}
	}
	v.conf = c
	b, err := json.MarshalIndent(c, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(v.env.Home, phoneViewFile), append(b, '\n'), 0o600)
	}
	if err != nil {
		return &fieldError{Error: "saving the phone view settings: " + err.Error()}
	}
	return nil
}

// status is what GET /desktop/lanview answers.
func (v *phoneView) status() (phoneViewStatus, error) {
	v.mu.Lock()
	st := phoneViewStatus{phoneViewConfig: v.conf, Users: []string{}}
	if v.bound != "" {
		st.URL = "http://" + v.bound
	}
	v.mu.Unlock()
	list, err := v.users().List()
	for _, u := range list {
		st.Users = append(st.Users, u.Name)
	}
	return st, err
}

func (v *phoneView) users() *webview.Users { return webview.OpenUsers(webview.UsersFile(v.env.Home)) }

// checkListenAddr checks a "host:port" to listen on: the host an IP
// address or empty, the port a number (0: any).
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host %q is not an IP address (leave it empty for every interface)", host)
		}
	}
	return nil
}

// engineRunner runs the engine's Run and starts it again on request (the
// Settings page's "Restart to apply": a new listen address), inside the
// process: the engine, its API and the web UI stay.
type engineRunner struct {
	e     *sync.Engine
	reqs  chan chan error // a restart request and where its outcome goes
	ended chan struct{}   // closed when run returns
}

func newEngineRunner(e *sync.Engine) *engineRunner {
	return &engineRunner{e: e, reqs: make(chan chan error), ended: make(chan struct{})}
}

// run runs the engine until ctx ends, restarting it on request. The first
// Run's failure to start is run's error; a restarted Run that fails is
// reported to the request, and the desktop waits for another one (the page
// stays, so the user can choose another address).
func (r *engineRunner) run(ctx context.Context) error {
	defer close(r.ended)
	var reply chan error
	restarted := false
	for {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.e.Run(rctx) }()
		if reply != nil {
			reply <- r.started(done)
			reply, restarted = nil, true
		}
		select {
		case err := <-done:
			cancel()
			if ctx.Err() != nil || !restarted || err == nil {
				return err // the first Run's end is the desktop's, as before restarts
			}
			// A restarted Run failed (reported): wait for the next request.
			select {
			case <-ctx.Done():
				return nil
			case reply = <-r.reqs:
			}
		case reply = <-r.reqs:
			cancel()
			<-done
		}
	}
}

// started waits until the Run listens (Engine.Addr) or fails, up to 30 s.
func (r *engineRunner) started(done chan error) error {
	t := time.NewTicker(5 * time.Millisecond) // Run has no readiness callback
	defer t.Stop()
	deadline := time.After(30 * time.Second)
	for r.e.Addr() == nil {
		select {
		case err := <-done:
			done <- err // for run's select
			return err
		case <-deadline:
			return errors.New("the engine did not start listening within 30 s")
		case <-t.C:
		}
	}
	return nil
}

// restart asks run to restart the engine and returns the outcome: nil
// once it listens again.
func (r *engineRunner) restart(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case r.reqs <- reply:
	case <-r.ended:
		return errors.New("the engine has stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// desktopRoutes serves /desktop/: the phone view's settings and accounts,
// and the restart. Every request needs the API key (X-API-Key), which is
// also the CSRF defence, as for /rest/.
func desktopRoutes(key string, view *phoneView, runner *engineRunner) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /desktop/lanview", func(w http.ResponseWriter, r *http.Request) {
		st, err := view.status()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, fieldError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("PUT /desktop/lanview", func(w http.ResponseWriter, r *http.Request) {
		var c phoneViewConfig
		if err := readBody(r, &c); err != nil {
			writeJSON(w, http.StatusBadRequest, fieldError{Error: err.Error()})
			return
		}
		if fe := view.set(c); fe != nil {
			writeJSON(w, http.StatusBadRequest, fe)
			return
		}
		st, _ := view.status()
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("PUT /desktop/lanview/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Password string `json:"password"`
		}
		if err := readBody(r, &in); err != nil {
			writeJSON(w, http.StatusBadRequest, fieldError{Error: err.Error()})
			return
		}
		users, name := view.users(), r.PathValue("name")
		folders := []string{webview.AllFolders}
		if u, ok, err := users.Lookup(name); err == nil && ok {
			folders = u.Folders // a new password keeps what the account may read
		}
		if _, err := users.Add(name, in.Password, folders); err != nil {
			writeJSON(w, http.StatusBadRequest, fieldError{Error: err.Error(), Field: "password"})
			return
		}
		st, _ := view.status()
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("DELETE /desktop/lanview/users/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := view.users().Remove(r.PathValue("name")); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, webview.ErrNoUser) {
				status = http.StatusNotFound
			}
			writeJSON(w, status, fieldError{Error: err.Error()})
			return
		}
		st, _ := view.status()
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /desktop/restart", func(w http.ResponseWriter, r *http.Request) {
		if runner == nil {
			writeJSON(w, http.StatusNotImplemented, fieldError{Error: "this process cannot restart its engine"})
			return
		}
		if err := runner.restart(r.Context()); err != nil {
			writeJSON(w, http.StatusInternalServerError, fieldError{Error: "the engine did not start again: " + err.Error(), Field: "listenAddr"})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Addr string `json:"addr"`
		}{runner.e.Addr().String()})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("X-API-Key")), []byte(key)) != 1 {
			writeJSON(w, http.StatusUnauthorized, fieldError{Error: "missing or wrong API key"})
			return
		}
		if view == nil && r.URL.Path != "/desktop/restart" {
			writeJSON(w, http.StatusNotImplemented, fieldError{Error: "no phone view in this process"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody decodes a small JSON body; unknown fields are an error.
func readBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}
