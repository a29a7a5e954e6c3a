package httpapi

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	gosync "sync"

	"github.com/peersync/peersync/sync"
)

// Options configures a Server.
type Options struct {
	// Key is the API key every request must carry (X-API-Key: KEY or
	// Authorization: Bearer KEY); see LoadOrCreateKey. An empty Key
	// refuses every request.
	Key string
	// LANName is the daemon's --lan-name (with or without ".local"):
	// NAME.local is then accepted as a Host too. "" = none.
	LANName string
	// ConsumeEvents makes the Server the reader of Engine.Events: New
	// starts a goroutine that logs every event for /rest/events and then
	// hands it to OnEvent, until the channel closes (Engine.Close) or
	// Close. Leave it false when the program reads Engine.Events itself;
	// it then passes each event to Publish.
	ConsumeEvents bool
	// OnEvent, with ConsumeEvents, receives every event after it is logged
	// (the program's own use: logging, a status file). It runs on the
	// consuming goroutine: keep it short, as the Engine drops events while
	// its channel is full.
	OnEvent func(sync.Event)
	// RingSize is how many events /rest/events can replay; 0 =
	// DefaultRingSize.
	RingSize int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Server is the local HTTP API over one Engine: an http.Handler serving
// the routes under /rest/ (see the package doc and openapi.json). It
// answers nothing else (404), so a program mounts it beside its pages:
//
//	mux.Handle("/rest/", api)
type Server struct {
	e      *sync.Engine
	opts   Options
	log    *slog.Logger
	events *eventLog
	mux    *http.ServeMux
	stop   chan struct{} // closed by Close: ends the consumer
	done   chan struct{} // closed when the consumer has returned
	once   gosync.Once
}

// maxBody bounds a request body (JSON configuration, never file data).
const maxBody = 1 << 20

// New returns the API server for e. With opts.ConsumeEvents it reads
// e.Events() from now on (see Options); Close stops that.
func New(e *sync.Engine, opts Options) *Server {
	s := &Server{e: e, opts: opts, log: opts.Logger, events: newEventLog(opts.RingSize), mux: http.NewServeMux(),
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	paths := http.NewServeMux() // every path, any method: tells 405 from 404
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, rt.handler)
		if _, p := paths.Handler(&http.Request{Method: "GET", URL: &url.URL{Path: rt.pattern}}); p != rt.pattern {
			paths.Handle(rt.pattern, http.NotFoundHandler())
		}
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, p := paths.Handler(r); p != "" {
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed (see GET /rest/openapi.json)", r.Method, r.URL.Path))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("no route %s %s (see GET /rest/openapi.json)", r.Method, r.URL.Path))
	})
	if opts.ConsumeEvents {
		go s.consume()
	} else {
		close(s.done)
	}
	return s
}

// consume reads the Engine's events until the channel closes or Close.
func (s *Server) consume() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case ev, ok := <-s.e.Events():
			if !ok {
				return
			}
			s.Publish(ev)
			if s.opts.OnEvent != nil {
				s.opts.OnEvent(ev)
			}
		}
	}
}

// Publish adds ev to the event log (and wakes every /rest/events stream)
// and returns its ID. With ConsumeEvents the Server calls it itself.
func (s *Server) Publish(ev sync.Event) uint64 { return s.events.add(ev) }

// Close ends every /rest/events stream (an http.Server's Shutdown waits
// for them otherwise) and stops consuming events; requests after it get no
// events. It does not close the Engine. Call it before shutting down the
// http.Server the handler is mounted on.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.events.close()
	})
	<-s.done
	return nil
}

// ServeHTTP checks the Host (403) and the API key (401), then serves the
// route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !RequestHostAllowed(r, s.opts.LANName) {
		writeError(w, http.StatusForbidden, fmt.Errorf("unexpected Host header %q: use the address the API listens on, localhost or the --lan-name", r.Host))
		return
	}
	if !s.keyOK(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="peersync"`)
		writeError(w, http.StatusUnauthorized, errors.New("missing or wrong API key: send X-API-Key (the line in <home>/apikey)"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

// keyOK compares the request's key with Options.Key in constant time.
func (s *Server) keyOK(r *http.Request) bool {
	got := r.Header.Get("X-API-Key")
	if got == "" {
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got = strings.TrimSpace(b)
		}
	}
	if s.opts.Key == "" || got == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Key)) == 1
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API (served at
// /rest/openapi.json).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, Error{Error: err.Error()})
}

// readJSON decodes the request body into v; unknown fields are an error,
// so that a typo is not silently ignored.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body: want a JSON object")
		}
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: more than one JSON value")
	}
	return nil
}
