package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/internal/atomicfile"
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
		created, err := ensureSelfSigned(cfg.CertFile, cfg.KeyFile, env.LANName)
		if err != nil {
			return nil, err
		}
		if created {
			fmt.Fprintf(env.Stdout, "web: generated a self-signed certificate in %s\n", cfg.CertFile)
		}
	}
	certs := &certSource{certFile: cfg.CertFile, keyFile: cfg.KeyFile}
	cert, err := certs.get()
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
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certs.get()
		}},
	}
	fmt.Fprintf(env.Stdout, "web view on https://%s (certificate SHA-256 %s)\n", ln.Addr(), fingerprint(cert.Leaf))
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

// fingerprint is a certificate's SHA-256 as browsers show it (AB:CD:…).
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// certSource loads the certificate and key, and reloads them when either
// file changes (a renewed certificate is used without a restart).
type certSource struct {
	certFile, keyFile string

	mu      gosync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
}

func (s *certSource) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfi, err1 := os.Stat(s.certFile)
	kfi, err2 := os.Stat(s.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if s.cert != nil {
			return s.cert, nil // mid-renewal: keep serving the last good pair
		}
		return nil, fmt.Errorf("web certificate: %w", err)
	}
	if s.cert != nil && cfi.ModTime().Equal(s.certMod) && kfi.ModTime().Equal(s.keyMod) {
		return s.cert, nil
	}
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		if s.cert != nil {
			return s.cert, nil
		}
		return nil, fmt.Errorf("web certificate: %w", err)
	}
	s.cert, s.certMod, s.keyMod = &c, cfi.ModTime(), kfi.ModTime()
	return s.cert, nil
}

// ensureSelfSigned writes a self-signed certificate and its key (0600)
// unless the certificate file exists. It names the host, localhost, the
// LAN name and the machine's addresses, and is valid 800 days (Apple's
// platforms refuse server certificates valid longer than 825).
func ensureSelfSigned(certFile, keyFile, lanName string) (bool, error) {
	if _, err := os.Stat(certFile); err == nil {
		return false, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return false, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "peersync server " + host, Organization: []string{"peersync (self-signed)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(800 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	if lanName != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, lanName+".local")
	}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ipn.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return false, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", kder, 0o600); err != nil {
		return false, err
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// writePEM writes one PEM block to file atomically with mode perm.
func writePEM(file, typ string, der []byte, perm os.FileMode) error {
	if err := atomicfile.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), perm); err != nil {
		return fmt.Errorf("web certificate: %w", err)
	}
	return nil
}
