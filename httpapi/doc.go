// Package httpapi is the local HTTP API of a peersync daemon: JSON routes
// under /rest/ over a *sync.Engine — status, the device, folders (add,
// remove, pause, scan, revert, history, restore, conflict copies and
// "keep this one", files and their bytes at any revision), peers (set,
// remove, pause), pending devices and folder offers (accept, ignore),
// schedules, bandwidth limits, sync-now, the network settings (GET and PUT
// /rest/settings: a value that is not valid is a 400 {"error", "field"};
// TURN passwords are write-only) — and the
// engine's events as Server-Sent Events. It is the base of the desktop web
// UI, of the CLI while a daemon runs, and of any other program that drives
// the daemon. The routes are described by an OpenAPI 3 document, embedded
// (OpenAPI) and served at GET /rest/openapi.json; a test calls every
// documented route on a real Engine and checks that every route served is
// documented.
//
// Serving it:
//
//	key, err := httpapi.LoadOrCreateKey(home) // <home>/apikey, 0600
//	api := httpapi.New(engine, httpapi.Options{Key: key, ConsumeEvents: true,
//		OnEvent: func(ev sync.Event) { log.Println(ev) }})
//	mux.Handle("/rest/", api)                   // beside the UI's pages
//	srv := &http.Server{Handler: mux}
//	go srv.Serve(ln)
//	...
//	api.Close()                                 // ends the event streams
//	srv.Shutdown(ctx)
//
// and calling it:
//
//	c := &httpapi.Client{BaseURL: "http://127.0.0.1:44997", Key: key}
//	st, err := c.Status(ctx)
//
// Server.Client returns a Client that calls a Server in the same process,
// without a socket: the CLI uses it over an Engine it opened itself when no
// daemon runs, so that every command is the same API call either way.
//
// # Security
//
// The API listens on loopback by default (the UI listener,
// 127.0.0.1:44997). Every request must carry the key of <home>/apikey (one
// line, mode 0600, created by `desktop init` or the first daemon start) as
// `X-API-Key: KEY` or `Authorization: Bearer KEY`; a missing or wrong key
// is a 401 (compared in constant time). The Host header must name the
// listener: localhost, a loopback address, the address the connection
// arrived on, or the daemon's --lan-name + ".local"; anything else is a
// 403, so a web page elsewhere that rebinds its DNS name to 127.0.0.1
// cannot read the API even if it learned the key. No cookie is set or
// read: a browser page must send the key in a header, which a cross-site
// form cannot do, so the key header is the CSRF defence.
//
// Errors are {"error":"..."} with a fitting status: 400 for bad input
// (unknown JSON fields included), 404 for an unknown folder, peer, offer,
// file or route, 405 for a wrong method, 409 when a guard refused (the
// mass-delete guard: confirm with ?allow-mass-delete=true; a revert of a
// folder that is not receive-only), 500 when the engine failed, 503 for
// sync-now while the engine is not running. A file's bytes are sent as an
// attachment of type application/octet-stream with a sandbox CSP, never
// rendered in the API's origin.
//
// # Events
//
// The Engine has one event channel, Engine.Events, and one reader. With
// Options.ConsumeEvents the Server is that reader: it appends each event
// to a bounded ring (Options.RingSize, default 1024) under an increasing
// ID (1, 2, ... from each start) and then hands it to Options.OnEvent, the
// program's own use (a log line, a status file). Without it the program
// reads the channel and calls Server.Publish for each event. Either way
// every GET /rest/events stream is fed from the ring, never from the
// channel: a slow stream costs the Engine nothing, and a stream that falls
// more than the ring behind is told so.
//
// GET /rest/events is a Server-Sent Events stream: for each event
//
//	id: 42
//	event: local-changes
//	data: {"ID":42,"Time":"...","Kind":"local-changes","Folder":"docs",...}
//
// (data: EventJSON, the sync.Event's fields under their Go names). It
// starts after the ID in the Last-Event-ID header (a browser's EventSource
// sends it when it reconnects, so nothing is missed or repeated) or in
// ?since=N (0: all the ring holds); with neither, with the next event.
// When the ring no longer holds events asked for, an "event: gap" with
// {"Kind":"gap","Missed":N} comes first (no Missed: the ID is from before
// the daemon restarted); the client should then reload /rest/status. A
// ": keep-alive" comment is sent every 15 s. Server.Close ends every
// stream; call it before the http.Server's Shutdown, which would otherwise
// wait for the streams.
package httpapi
