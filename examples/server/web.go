package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/internal/webview"
)

// webConfig configures the web view service of `run --web`.
type webConfig struct {
	Addr              string // TCP HOST:PORT
	CertFile, KeyFile string // PEM; both "" = the self-signed pair in the home
}

// startWeb serves the read-only web view over HTTPS until the returned stop
// is called, which lets requests in flight finish (up to 10 s).
func startWeb(env cli.Env, cfg webConfig) (func(), error) {
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("--web-cert and --web-key go together")
	}
	if cfg.CertFile == "" {
		cfg.CertFile, cfg.KeyFile = filepath.Join(env.Home, "web-cert.pem"), filepath.Join(env.Home, "web-key.pem")
		created, err := webview.EnsureSelfSigned(cfg.CertFile, cfg.KeyFile, env.LANName)
		if err != nil {
			return nil, err
		}
		if created {
			fmt.Fprintf(env.Stdout, "web: generated a self-signed certificate in %s\n", cfg.CertFile)
		}
	}
	certs := webview.NewCertFiles(cfg.CertFile, cfg.KeyFile)
	cert, err := certs.Get(nil)
	if err != nil {
		return nil, err
	}
	users := webview.OpenUsers(webview.UsersFile(env.Home))
	if list, err := users.List(); err != nil {
		return nil, err
	} else if len(list) == 0 {
		fmt.Fprintf(env.Stdout, "web: no users yet; add one with `server user add NAME [--folders ID,ID]`\n")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--web %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           webview.New(env.Engine, webview.Options{Users: users, Secure: true, Log: env.Log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(env.Log.Handler(), slog.LevelDebug), // TLS handshake noise from scanners
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.Get},
	}
	fmt.Fprintf(env.Stdout, "web view on https://%s (certificate SHA-256 %s)\n", ln.Addr(), webview.Fingerprint(cert.Leaf))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Log.Error("web view stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			env.Log.Warn("web view: requests cut at shutdown", "err", err)
			srv.Close()
		}
		<-done
	}, nil
}
