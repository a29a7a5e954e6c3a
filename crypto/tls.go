package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ErrUnknownPeer is returned (wrapped in a *PeerError) when a peer presents a
// valid identity that the caller does not accept.
var ErrUnknownPeer = errors.New("peer not accepted: not a device we trust")

// PeerError says which device failed authentication and why.
type PeerError struct {
	Device DeviceID // zero if no device could be read from the certificate
	Err    error
}

// Error names the device (when known) and the reason.
func (e *PeerError) Error() string {
	if e.Device.IsZero() {
		return "crypto: peer authentication: " + e.Err.Error()
	}
	return fmt.Sprintf("crypto: peer %s: %v", e.Device, e.Err)
}

// Unwrap returns the reason, e.g. ErrUnknownPeer.
func (e *PeerError) Unwrap() error { return e.Err }

// TLSCertificate returns a self-signed certificate for the identity, for use
// in TLS 1.3 with mutual authentication. The certificate carries nothing but
// the Ed25519 public key; peers check that key against the devices they trust, not
// against any certificate authority.
func (i *Identity) TLSCertificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("crypto: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "peersync " + i.id.Short()},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, i.key.Public(), i.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("crypto: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("crypto: parse own certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: i.key, Leaf: leaf}, nil
}

// DeviceIDFromCertificate returns the DeviceID whose key signed cert. The
// certificate must be self-signed with an Ed25519 key. (That the peer holds
// the private key is proven by the TLS handshake itself.)
func DeviceIDFromCertificate(cert *x509.Certificate) (DeviceID, error) {
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return DeviceID{}, &PeerError{Err: fmt.Errorf("certificate key is %T, want Ed25519", cert.PublicKey)}
	}
	var d DeviceID
	copy(d[:], pub)
	if cert.SignatureAlgorithm != x509.PureEd25519 {
		return DeviceID{}, &PeerError{Device: d, Err: errors.New("certificate is not signed with Ed25519")}
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return DeviceID{}, &PeerError{Device: d, Err: fmt.Errorf("certificate is not self-signed by its key: %w", err)}
	}
	return d, nil
}

// VerifyPeerCertificate parses the certificate chain a peer presented in a
// TLS handshake, extracts its DeviceID and asks accept whether that device
// may connect. It is meant for tls.Config.VerifyPeerCertificate, with
// InsecureSkipVerify set (no CA is involved; the DeviceID is the trust
// anchor). accept returning an error refuses the peer with a *PeerError.
func VerifyPeerCertificate(rawCerts [][]byte, accept func(DeviceID) error) (DeviceID, error) {
	if len(rawCerts) != 1 {
		return DeviceID{}, &PeerError{Err: fmt.Errorf("peer sent %d certificates, want exactly 1", len(rawCerts))}
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return DeviceID{}, &PeerError{Err: fmt.Errorf("parse certificate: %w", err)}
	}
	return VerifyPeer([]*x509.Certificate{cert}, accept)
}

// VerifyPeer is VerifyPeerCertificate for an already parsed chain, as found
// in tls.ConnectionState.PeerCertificates (use it from
// tls.Config.VerifyConnection, which, unlike VerifyPeerCertificate, also runs
// on resumed sessions).
func VerifyPeer(certs []*x509.Certificate, accept func(DeviceID) error) (DeviceID, error) {
	if len(certs) != 1 {
		return DeviceID{}, &PeerError{Err: fmt.Errorf("peer sent %d certificates, want exactly 1", len(certs))}
	}
	d, err := DeviceIDFromCertificate(certs[0])
	if err != nil {
		return DeviceID{}, err
	}
	if err := accept(d); err != nil {
		return d, &PeerError{Device: d, Err: err}
	}
	return d, nil
}
