package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// fixture is a real Engine in a temporary home with the API served over
// real HTTP on loopback.
type fixture struct {
	e      *sync.Engine
	home   string
	api    *Server
	url    string // http://127.0.0.1:PORT
	client *Client
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	home := t.TempDir()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	e, err := sync.New(sync.Config{Home: home, Identity: id, Network: sync.NetworkConfig{ListenAddr: "127.0.0.1:0"}})
	require.NoError(t, err)
	key, err := LoadOrCreateKey(home)
	require.NoError(t, err)
	if opts.Key == "" {
		opts.Key = key
	}
	api := New(e, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx), "Shutdown waits for nothing after Close")
		<-served
		_ = e.Close()
	})
	url := "http://" + ln.Addr().String()
	return &fixture{e: e, home: home, api: api, url: url, client: &Client{BaseURL: url, Key: opts.Key}}
}

// do sends a request with the fixture's key; body may be "".
func (f *fixture) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, r)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", f.client.Key)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	res.Body.Close()
	return res, string(b)
}

// errorText decodes an {"error"} body.
func errorText(t *testing.T, body string) string {
	t.Helper()
	var e Error
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	require.NotEmpty(t, e.Error, body)
	return e.Error
}

// stream follows /rest/events from after in the background; Stop ends it.
type stream struct {
	events chan EventJSON
	cancel context.CancelFunc
	done   chan error
}

func (f *fixture) follow(t *testing.T, after int64) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{events: make(chan EventJSON, 100), cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- f.client.Events(ctx, after, func(ev EventJSON) error {
			select {
			case s.events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *stream) stop() {
	s.cancel()
	<-s.done
	s.done <- context.Canceled // later stops return at once
}

// next returns the next event of a kind (others are skipped), failing
// after a generous deadline.
func (s *stream) next(t *testing.T, kind sync.EventKind) EventJSON {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev.Kind == kind {
				return ev
			}
		case err := <-s.done:
			s.done <- err
			require.Failf(t, "event stream ended", "waiting for %s: %v", kind, err)
		case <-deadline:
			require.Failf(t, "no event", "waiting for %s", kind)
		}
	}
}

var errStop = errors.New("stop")

// run runs the fixture's Engine (on loopback, no discovery) until the
// test ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for f.e.Addr() == nil { // Run has no readiness callback; Addr is set once it listens
		select {
		case err := <-done:
			require.FailNow(t, "Run returned", "%v", err)
		case <-time.After(10 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "the engine did not start listening")
	}
}
