package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// Commands beside a running daemon. The daemon serves the HTTP API
// (package httpapi) and says where in runtime.json ("api"); while it runs,
// the commands that change the configuration (and status, scan, restore)
// call that API, so the daemon applies the change at once: it does not
// watch config.json. Without a daemon they open the home themselves, as
// its owner (the home lock), so no daemon can start in the middle of a
// change and miss it.

// apiWait bounds how long a configuration command waits for a daemon that
// holds the home lock but has not yet published its API address (it is
// starting), or for another command holding the lock.
const apiWait = 10 * time.Second

// lockWait bounds how long `run` waits for a command holding the home lock
// (a configuration change holds it for milliseconds).
const lockWait = 3 * time.Second

// daemonClient returns a client of the running daemon's API, or nil when
// runtime.json names none (no daemon runs).
func (a *app) daemonClient() (*httpapi.Client, error) {
	info, ok := readRuntime(a.home)
	if !ok || info.API == "" {
		return nil, nil
	}
	key, err := httpapi.LoadKey(a.home)
	if err != nil {
		return nil, fmt.Errorf("the daemon runs, but its API key: %w", err)
	}
	return &httpapi.Client{BaseURL: "http://" + info.API, Key: key}, nil
}

// access is what a command does with the home, which decides how it opens
// it when no daemon runs.
type access int

const (
	// readAccess: status, history: the home opened shared.
	readAccess access = iota
	// configAccess: configuration changes: the home owned (so that no
	// daemon starts in the middle and misses the change), waiting up to
	// apiWait for a starting daemon's API or another command; then shared.
	configAccess
	// ownAccess: commands that commit (scan, restore, revert): the home
	// owned; a home held without an API is errDaemonRunning.
	ownAccess
)

// conn is the API a command talks to: the running daemon's, or one served
// in this process over an engine opened for the command. Every command
// speaks the API either way, so both paths are the same code.
type conn struct {
	*httpapi.Client
	daemon bool   // the daemon's API
	close  func() // releases the engine opened for the command
}

// connect returns the API for a command (what names it in errors).
func (a *app) connect(ctx context.Context, what string, acc access) (conn, error) {
	deadline := time.Now().Add(apiWait)
	for {
		c, err := a.daemonClient()
		if err != nil {
			return conn{}, err
		}
		if c != nil {
			return conn{Client: c, daemon: true, close: func() {}}, nil
		}
		var e *sync.Engine
		switch acc {
		case readAccess:
			e, _, err = a.engine(sync.Config{Shared: true})
		case ownAccess:
			e, err = a.ownEngine(what)
		default:
			e, _, err = a.engine(sync.Config{})
			var inUse *sync.HomeInUseError
			if errors.As(err, &inUse) {
				if time.Now().Before(deadline) {
					select {
					case <-ctx.Done():
						return conn{}, ctx.Err()
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				e, _, err = a.engine(sync.Config{Shared: true})
			}
		}
		if err != nil {
			return conn{}, err
		}
		api := httpapi.New(e, httpapi.Options{Key: "in-process"})
		return conn{Client: api.Client(), close: func() { _ = api.Close(); _ = e.Close() }}, nil
	}
}

// apiServer is the daemon's side: the API handler over its engine, and
// where it listens once known.
type apiServer struct {
	api  *httpapi.Server
	key  string
	addr string // host:port the API answers on; "" until published
}

// publish records where a program's service mounted the API.
func (s *apiServer) publish(bound net.Addr) {
	s.addr = dialAddr(bound)
}

// dialAddr is the address a local client dials to reach a listener bound
// to addr: loopback for a wildcard listener.
func dialAddr(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return ta.String()
}

// serveFallback serves the API on a loopback port of its own when no
// service of the program mounted it, so that the CLI always reaches a
// running daemon. It returns the stop function.
func (s *apiServer) serveFallback() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("API listener: %w", err)
	}
	srv := &http.Server{Handler: s.api, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	s.publish(ln.Addr())
	return func() {
		_ = s.api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
