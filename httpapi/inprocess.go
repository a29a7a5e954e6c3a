package httpapi

import (
	"context"
	"io"
	"net"
	"net/http"
	gosync "sync"
)

// Client returns a Client that calls s in this process, without a socket:
// a program (the CLI when no daemon runs) drives an Engine it opened with
// exactly the calls it would send to a daemon's API. Requests pass the
// same checks (the key of Options.Key; the Host is loopback).
func (s *Server) Client() *Client {
	return &Client{BaseURL: "http://127.0.0.1:0", Key: s.opts.Key, HTTP: &http.Client{Transport: inProcess{s}}}
}

// inProcess is an http.RoundTripper that serves each request with a
// Server's ServeHTTP; the response body streams through a pipe as the
// handler writes it.
type inProcess struct{ s *Server }

// loopback is the listener address an in-process request claims to have
// arrived on (port 0, as the Client's BaseURL says).
var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// RoundTrip serves req with the Server and returns the response once the
// handler has written its header.
func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(loopback))
	req = req.Clone(ctx)
	if req.Body == nil {
		req.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		t.s.ServeHTTP(w, req)
		w.WriteHeader(http.StatusOK) // a handler that wrote nothing
		_ = pw.Close()
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		_ = pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	return &http.Response{Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req}, nil
}

// pipeWriter is the http.ResponseWriter of an in-process request.
type pipeWriter struct {
	header http.Header
	sent   http.Header // the header as of WriteHeader
	status int
	pw     *io.PipeWriter
	once   gosync.Once
	ready  chan struct{} // closed by WriteHeader
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(b)
}

// Flush makes the event stream work in process too (the pipe has no
// buffer to flush).
func (w *pipeWriter) Flush() {}
