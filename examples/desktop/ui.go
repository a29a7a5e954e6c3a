package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	gosync "sync"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// The local web UI: six pages (Status, Send, Receive, Schedule, History,
// Settings) in web/, embedded in the binary, written in plain HTML, CSS and
// JavaScript (no build step, nothing fetched from the network). The pages
// are clients of the engine's HTTP API, which the UI server mounts under
// /rest/ on the same listener, so everything the UI does a script can do.
//
// Security, in layers:
//   - the listener is on loopback unless told otherwise, and every request
//     whose Host header is not one of the UI's own names is refused
//     (hostCheck), which stops DNS rebinding;
//   - the API wants its key in an X-API-Key header; the page gets the key in
//     a <meta> tag of index.html, served only to an allowed Host. A custom
//     header is something no cross-site form, link or image can send, so
//     the key doubles as the CSRF token of every state-changing request;
//     no cookie exists that a browser could attach on its own;
//   - a strict Content-Security-Policy allows only this origin's own script
//     and style files (no inline script, no eval, no framing), and the
//     script puts every name it shows into the page as text, never as HTML.

//go:embed web
var webFiles embed.FS

// web is the web/ directory of webFiles.
var web = func() fs.FS {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err)
	}
	return sub
}()

var indexPage = template.Must(template.ParseFS(web, "index.html"))

// contentSecurityPolicy allows the page its own script, style, API and the
// QR image, and nothing else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiOptions configure serveUI.
type uiOptions struct {
	// Addr is the listen address, e.g. "127.0.0.1:44997".
	Addr string
	// LANName is run's --lan-name: NAME.local is accepted as a Host too.
	LANName string
	// API serves /rest/ (the engine's HTTP API); nil answers 503.
	API http.Handler
	// Key is the API key the page sends as X-API-Key.
	Key string
	// DefaultParent is where the pages suggest new folders go (~/PeerSync).
	DefaultParent string
	// Desktop serves /desktop/: the phone view's settings and the engine
	// restart (desktopRoutes); nil answers 404.
	Desktop http.Handler
	Log     *slog.Logger
}

// serveUI starts the web UI for e and returns a function that stops it and
// the address it listens on.
func serveUI(ctx context.Context, e *sync.Engine, o uiOptions) (stop func(), bound string, err error) {
	return serveHTTP(ctx, o.Addr, o.Log, func(ln net.Addr) http.Handler {
		return hostCheck(ln, o.LANName, securityHeaders(uiHandler(e, o)))
	})
}

// serveHTTP serves the handler that handler makes for the listener on addr
// until the returned stop is called.
func serveHTTP(ctx context.Context, addr string, log *slog.Logger, handler func(bound net.Addr) http.Handler) (stop func(), bound string, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: handler(ln.Addr()), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("web server stopped", "addr", ln.Addr(), "err", err)
		}
	}()
	return func() {
		// Shutdown waits for open requests; an event stream never ends by
		// itself (the API's Close ends them first): give them a moment,
		// then cut.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, ln.Addr().String(), nil
}

// uiHandler routes the pages, their files, the QR code and the API.
func uiHandler(e *sync.Engine, o uiOptions) http.Handler {
	mux := http.NewServeMux()
	// The page with the key goes only to a browser on this machine; one
	// elsewhere on the LAN (--ui on a LAN address) gets it without, and the
	// API refuses it.
	withKey, withoutKey := renderIndex(o.Key, o.DefaultParent), renderIndex("", o.DefaultParent)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store") // it holds the key
		page := withoutKey
		if fromLoopback(r) {
			page = withKey
		}
		_, _ = w.Write(page)
	})
	for _, name := range []string{"app.js", "app.css"} {
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, web, name)
		})
	}
	qr := gosync.OnceValues(func() ([]byte, error) { return qrcode.Encode(e.DeviceID().String(), qrcode.Medium, 360) })
	mux.HandleFunc("GET /qr.png", func(w http.ResponseWriter, r *http.Request) {
		png, err := qr()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	})
	api := o.API
	if api == nil {
		api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"the HTTP API is not part of this build"}` + "\n"))
		})
	}
	mux.Handle("/rest/", api)
	if o.Desktop != nil {
		mux.Handle("/desktop/", o.Desktop)
	}
	return mux
}

// renderIndex is index.html with the API key and the default parent folder.
func renderIndex(key, defaultParent string) []byte {
	var page bytes.Buffer
	if err := indexPage.Execute(&page, struct{ Key, DefaultParent string }{key, defaultParent}); err != nil {
		panic(err) // the template is embedded: TestUIServesPages runs it
	}
	return page.Bytes()
}

// fromLoopback reports whether r came from this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// securityHeaders sets the CSP and its companions on every answer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// hostCheck refuses requests whose Host header is not one of this UI's
// own names (httpapi.HostAllowed: localhost, a loopback address, the
// listener's address, --lan-name.local), so that a web page elsewhere cannot
// read the pages or their key through DNS rebinding.
func hostCheck(bound net.Addr, lanName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpapi.HostAllowed(r.Host, bound, lanName) {
			http.Error(w, "unexpected Host header", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
