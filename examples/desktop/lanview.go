package main

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/internal/webview"
)

// serveLANView serves the read-only web view of the folders (internal/webview:
// log in, browse, download, a file's history) on addr, a LAN address, for
// the phones of the house: plain HTTP (a trusted LAN; the session cookie is
// HttpOnly and SameSite=Strict), the accounts of `desktop user add NAME`,
// the Host check of the UI (the address, --lan-name.local). It never serves
// the configuration pages or the API key.
func serveLANView(ctx context.Context, env cli.Env, addr string) (stop func(), bound string, err error) {
	users := webview.OpenUsers(webview.UsersFile(env.Home))
	if list, err := users.List(); err == nil && len(list) == 0 {
		fmt.Fprintf(env.Stdout, "LAN view: no accounts yet; add one with `desktop user add NAME`\n")
	}
	view := webview.New(env.Engine, webview.Options{Users: users, Title: env.Engine.Name(), Log: env.Log})
	return serveHTTP(ctx, addr, env.Log, func(ln net.Addr) http.Handler { return hostCheck(ln, env.LANName, view) })
}
