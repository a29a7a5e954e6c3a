package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/peersync/peersync/internal/atomicfile"
)

// Identity is a device's long-term Ed25519 key pair. Its public half is the
// DeviceID. An Identity is immutable and safe for concurrent use.
type Identity struct {
	key ed25519.PrivateKey
	id  DeviceID
}

// GenerateIdentity creates a new random identity. rand nil means
// crypto/rand.Reader.
func GenerateIdentity(random io.Reader) (*Identity, error) {
	if random == nil {
		random = rand.Reader
	}
	_, key, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, fmt.Errorf("crypto: generate identity: %w", err)
	}
	return NewIdentity(key)
}

// NewIdentity wraps an existing Ed25519 private key.
func NewIdentity(key ed25519.PrivateKey) (*Identity, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("crypto: Ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	// Derive the key pair from the seed rather than trusting the public
	// half stored in the key bytes: a file whose halves disagree would
	// otherwise sign as one device and claim to be another.
	full := ed25519.NewKeyFromSeed(key.Seed())
	if !bytes.Equal(full, key) {
		return nil, errors.New("crypto: Ed25519 private key is inconsistent (its public half does not match its seed)")
	}
	id := &Identity{key: full}
	copy(id.id[:], full.Public().(ed25519.PublicKey))
	return id, nil
}

// DeviceID returns the identity's public DeviceID.
func (i *Identity) DeviceID() DeviceID { return i.id }

// PrivateKey returns the Ed25519 private key. It is a copy: changing it does
// not change the identity.
func (i *Identity) PrivateKey() ed25519.PrivateKey {
	return append(ed25519.PrivateKey(nil), i.key...)
}

// Sign signs msg with the identity's key (pure Ed25519).
func (i *Identity) Sign(msg []byte) []byte { return ed25519.Sign(i.key, msg) }

// AuthorizedKey returns the public key as one OpenSSH line,
// "ssh-ed25519 AAAA…", as found in authorized_keys files and printed by
// `ssh-keygen -y`.
func (i *Identity) AuthorizedKey() string { return AuthorizedKey(i.id) }

// AuthorizedKey returns the OpenSSH public-key line of a DeviceID.
func AuthorizedKey(d DeviceID) string {
	pub, err := ssh.NewPublicKey(d.PublicKey())
	if err != nil { // cannot happen for a 32-byte Ed25519 key
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// MarshalOpenSSH returns the private key in the OpenSSH PEM format that
// ssh-keygen and age read ("-----BEGIN OPENSSH PRIVATE KEY-----").
func (i *Identity) MarshalOpenSSH(comment string) ([]byte, error) {
	block, err := ssh.MarshalPrivateKey(i.key, comment)
	if err != nil {
		return nil, fmt.Errorf("crypto: encode identity: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// ParseIdentity reads an unencrypted OpenSSH Ed25519 private key.
func ParseIdentity(pemBytes []byte) (*Identity, error) {
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("crypto: parse identity: %w", err)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return NewIdentity(k)
	case *ed25519.PrivateKey:
		return NewIdentity(*k)
	default:
		return nil, fmt.Errorf("crypto: identity is a %T key, want Ed25519", raw)
	}
}

// SaveIdentity writes i to path as an OpenSSH private key file with mode
// 0600, atomically.
func SaveIdentity(path string, i *Identity) error {
	data, err := i.MarshalOpenSSH("peersync " + i.id.Short())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("crypto: %w", err)
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// LoadIdentity reads the identity stored at path.
func LoadIdentity(path string) (*Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: read identity: %w", err)
	}
	id, err := ParseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %q)", err, path)
	}
	return id, nil
}

// LoadOrCreateIdentity loads the identity at path, or generates and saves a
// new one if the file does not exist. created reports which happened.
func LoadOrCreateIdentity(path string) (id *Identity, created bool, err error) {
	id, err = LoadIdentity(path)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	id, err = GenerateIdentity(nil)
	if err != nil {
		return nil, false, err
	}
	if err := SaveIdentity(path, id); err != nil {
		return nil, false, err
	}
	return id, true, nil
}

// ParsePeer reads a peer as users type it: either a printed DeviceID or an
// OpenSSH public-key line ("ssh-ed25519 AAAA… [comment]").
func ParsePeer(s string) (DeviceID, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "ssh-") {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return DeviceID{}, fmt.Errorf("crypto: parse public key line: %w", err)
		}
		if pub.Type() != ssh.KeyAlgoED25519 {
			return DeviceID{}, fmt.Errorf("crypto: public key is %q, want ssh-ed25519", pub.Type())
		}
		cpk, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return DeviceID{}, fmt.Errorf("crypto: unsupported public key type %q", pub.Type())
		}
		ed, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
		if !ok {
			return DeviceID{}, fmt.Errorf("crypto: public key is %q, want ssh-ed25519", pub.Type())
		}
		var d DeviceID
		copy(d[:], ed)
		return d, nil
	}
	return ParseDeviceID(s)
}
