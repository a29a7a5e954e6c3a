package webview

import (
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
	"math/big"
	"net"
	"os"
	"strings"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/internal/atomicfile"
)

// Fingerprint is a certificate's SHA-256 as browsers show it (AB:CD:…),
// for the user to compare with what a phone's browser shows before trusting
// a self-signed certificate.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// CertFiles serves a certificate and key from PEM files, and reloads them
// when either file changes, so a renewed certificate (certbot) is used
// without a restart; while a renewal leaves a broken pair, the last good
// one is kept. Use Get as tls.Config.GetCertificate.
type CertFiles struct {
	certFile, keyFile string

	mu      gosync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
}

// NewCertFiles returns the certificate source of certFile and keyFile.
func NewCertFiles(certFile, keyFile string) *CertFiles {
	return &CertFiles{certFile: certFile, keyFile: keyFile}
}

// Get returns the current certificate (loading it at first use, or again
// after either file changed). Its Leaf is set.
func (s *CertFiles) Get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfi, err1 := os.Stat(s.certFile)
	kfi, err2 := os.Stat(s.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if s.cert != nil {
			return s.cert, nil // mid-renewal: keep serving the last good pair
		}
		return nil, fmt.Errorf("webview: certificate: %w", err)
	}
	if s.cert != nil && cfi.ModTime().Equal(s.certMod) && kfi.ModTime().Equal(s.keyMod) {
		return s.cert, nil
	}
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		if s.cert != nil {
			return s.cert, nil
		}
		return nil, fmt.Errorf("webview: certificate: %w", err)
	}
	s.cert, s.certMod, s.keyMod = &c, cfi.ModTime(), kfi.ModTime()
	return s.cert, nil
}

// EnsureSelfSigned writes a self-signed certificate (ECDSA P-256) and its
// key (mode 0600) unless the certificate file exists, and reports whether
// it did. The certificate names localhost, the host name, lanName + ".local"
// if lanName is not "", and the machine's addresses; it is valid 800 days
// (Apple's platforms refuse server certificates valid longer than 825).
func EnsureSelfSigned(certFile, keyFile, lanName string) (bool, error) {
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
		return fmt.Errorf("webview: certificate: %w", err)
	}
	return nil
}
