package crypto

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixedIdentity(t *testing.T, seed byte) *Identity {
	t.Helper()
	id, err := GenerateIdentity(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	require.NoError(t, err)
	return id
}

func TestIdentityFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "home", "identity")
	id, created, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	assert.True(t, created)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, created, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, id.DeviceID(), again.DeviceID())

	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o600))
	_, _, err = LoadOrCreateIdentity(path)
	require.Error(t, err, "a corrupt identity must never be silently replaced")
}

// TestIdentityFileSSHKeygen checks that OpenSSH's own tool reads our key file
// and derives the same public key line.
func TestIdentityFileSSHKeygen(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("LOUD SKIP: ssh-keygen not installed (Debian openssh-client); .ci/run installs it")
	}
	path := filepath.Join(t.TempDir(), "identity")
	id, _, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	out, err := exec.Command("ssh-keygen", "-y", "-f", path).CombinedOutput()
	require.NoError(t, err, string(out))
	fields := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(fields), 2)
	assert.Equal(t, id.AuthorizedKey(), fields[0]+" "+fields[1])

	out, err = exec.Command("ssh-keygen", "-l", "-f", path).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "ED25519")
}

func TestParsePeer(t *testing.T) {
	id := fixedIdentity(t, 9)
	for _, in := range []string{
		id.DeviceID().String(),
		id.AuthorizedKey(),
		id.AuthorizedKey() + " laptop@home",
		"  " + id.AuthorizedKey() + "\n",
	} {
		got, err := ParsePeer(in)
		require.NoError(t, err, in)
		assert.Equal(t, id.DeviceID(), got)
	}
	for _, in := range []string{
		"",
		"ssh-ed25519 notbase64",
		// a FIDO security-key line carries an Ed25519 key too, but is not one of ours
		"sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIBvGizfxQPsIQvPH32K4yN+gU8M3aTkH+l6AsLkNR7roAAAABHNzaDo=",
		"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7",
	} {
		_, err := ParsePeer(in)
		assert.Error(t, err, in)
	}
}

func TestTLSMutualAuth(t *testing.T) {
	a, b, stranger := fixedIdentity(t, 1), fixedIdentity(t, 2), fixedIdentity(t, 3)

	handshake := func(client, server *Identity, serverAccepts DeviceID) (clientErr, serverErr error) {
		cc, err := client.TLSCertificate()
		require.NoError(t, err)
		sc, err := server.TLSCertificate()
		require.NoError(t, err)
		accept := func(want DeviceID) func(d DeviceID) error {
			return func(d DeviceID) error {
				if d != want {
					return ErrUnknownPeer
				}
				return nil
			}
		}
		c1, c2 := net.Pipe()
		srv := tls.Server(c2, &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{sc},
			ClientAuth: tls.RequireAnyClientCert, InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				_, err := VerifyPeerCertificate(raw, accept(serverAccepts))
				return err
			},
		})
		cli := tls.Client(c1, &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cc}, InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				_, err := VerifyPeerCertificate(raw, accept(server.DeviceID()))
				return err
			},
		})
		// Each side closes its end when its handshake ends, so a refusal on
		// one side never leaves the other blocked on the synchronous pipe.
		done := make(chan error, 1)
		go func() { err := srv.Handshake(); _ = srv.Close(); done <- err }()
		clientErr = cli.Handshake()
		if clientErr == nil {
			// TLS 1.3: the client finishes first; read to learn the server's verdict.
			// A clean close (EOF) means the server accepted us.
			if _, err := cli.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				clientErr = err
			}
		}
		_ = cli.Close()
		return clientErr, <-done
	}

	cErr, sErr := handshake(a, b, a.DeviceID())
	require.NoError(t, cErr)
	require.NoError(t, sErr)

	_, sErr = handshake(stranger, b, a.DeviceID())
	require.Error(t, sErr)
	var pe *PeerError
	require.True(t, errors.As(sErr, &pe), "got %v", sErr)
	assert.Equal(t, stranger.DeviceID(), pe.Device)
	assert.ErrorIs(t, sErr, ErrUnknownPeer)
}

func TestVerifyPeerCertificateRejectsJunk(t *testing.T) {
	ok := func(DeviceID) error { return nil }
	_, err := VerifyPeerCertificate(nil, ok)
	assert.Error(t, err)
	_, err = VerifyPeerCertificate([][]byte{[]byte("junk")}, ok)
	assert.Error(t, err)
}

func TestNewIdentityRejectsInconsistentKey(t *testing.T) {
	a, b := fixedIdentity(t, 1), fixedIdentity(t, 2)
	mixed := append(append([]byte(nil), a.PrivateKey()[:32]...), b.DeviceID().PublicKey()...)
	_, err := NewIdentity(mixed)
	assert.Error(t, err, "a seed with another device's public half must be refused")
}
