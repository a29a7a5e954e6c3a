package main

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/peersync/peersync/sync"
)

// The local web UI. This first version shows the engine's status (folders,
// heads, peers, connection state) and serves it as JSON at /api/status; the
// Send / Receive / Schedule / History pages come with their issues.

var page = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>peersync — {{.Name}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:60rem}
code{font-size:.85em;word-break:break-all}
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}
td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.ok{color:#176f2c}.off{color:#8a8a8a}.bad{color:#b00020}
</style></head><body>
<h1>peersync — {{.Name}}</h1>
<p>Device ID <code id="device">{{.Device}}</code>{{if .Addr}} · listening on {{.Addr}}{{end}}</p>
<h2>Folders</h2>
<table id="folders"><tr><th>ID</th><th>Path</th><th>Head</th></tr>
{{range .Folders}}<tr><td>{{.ID}}</td><td>{{.Path}}</td><td>{{if .Stopped}}<span class="bad">stopped: {{.Stopped}}</span>{{else if .Head.IsZero}}<span class="off">empty</span>{{else}}<code>{{.Head}}</code>{{end}}</td></tr>
{{else}}<tr><td colspan="3">No folders yet: <code>desktop folder add --id ID PATH</code></td></tr>{{end}}
</table>
<h2>Peers</h2>
<table id="peers"><tr><th>Name</th><th>Device ID</th><th>State</th><th>Folders</th></tr>
{{range .Peers}}<tr><td>{{.Name}}</td><td><code>{{.Device}}</code></td><td>{{if .Connected}}<span class="ok">connected</span> {{.Addr}}{{else}}<span class="off">offline</span>{{end}}</td><td>{{range .Folders}}{{.}} {{end}}</td></tr>
{{else}}<tr><td colspan="4">No peers yet: <code>desktop peer add --folders ID DEVICEID</code></td></tr>{{end}}
</table>
</body></html>`))

// serveUI starts the web UI on addr and returns a function that stops it.
// lanName is the run's --lan-name ("" if none): NAME.local is then
// accepted as the UI's host name too.
func serveUI(ctx context.Context, addr, lanName string, e *sync.Engine, log *slog.Logger) (stop func(), bound string, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, e.Status()); err != nil {
			log.Warn("web UI", "err", err)
		}
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.Status())
	})
	srv := &http.Server{Handler: hostCheck(ln.Addr(), lanName, mux), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("web UI stopped", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, ln.Addr().String(), nil
}

// hostCheck refuses requests whose Host header is not one of this UI's
// own names, so that a web page elsewhere cannot read the UI through DNS
// rebinding (its requests carry the attacker's host name, which may be any
// NAME.local a device on the LAN announces): see hostAllowed.
func hostCheck(bound net.Addr, lanName string, next http.Handler) http.Handler {
	ta, _ := bound.(*net.TCPAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ta == nil || !hostAllowed(r.Host, ta, lanName, isLocalIP) {
			http.Error(w, "unexpected Host header", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether host (a Host header) names the UI listening
// on bound, with the listener's port: "localhost", a loopback address, the
// listener's own address (for a wildcard listener, any address of this
// machine, as local reports), or lanName + ".local" when a --lan-name is
// configured. No other name is accepted, *.local ones included.
func hostAllowed(host string, bound *net.TCPAddr, lanName string, local func(net.IP) bool) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "80"
	}
	if port != strconv.Itoa(bound.Port) {
		return false
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		if bound.IP == nil || bound.IP.IsUnspecified() {
			return local(ip)
		}
		return ip.Equal(bound.IP)
	}
	lanName = strings.TrimSuffix(strings.ToLower(lanName), ".local")
	return name == "localhost" || (lanName != "" && name == lanName+".local")
}

// isLocalIP reports whether ip is one of this machine's addresses.
func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
