package webview

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The self-signed certificate is made once, fits what phones accept, and a
// replaced certificate is served without a restart.
func TestSelfSignedCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "web-cert.pem"), filepath.Join(dir, "web-key.pem")
	created, err := EnsureSelfSigned(certFile, keyFile, "myserver")
	require.NoError(t, err)
	assert.True(t, created)
	created, err = EnsureSelfSigned(certFile, keyFile, "myserver")
	require.NoError(t, err)
	assert.False(t, created, "kept on the next run")

	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(certFile)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, c.ExtKeyUsage)
	assert.LessOrEqual(t, c.NotAfter.Sub(c.NotBefore), 825*24*time.Hour, "Apple's limit")
	assert.Contains(t, c.DNSNames, "localhost")
	assert.Contains(t, c.DNSNames, "myserver.local")
	require.NoError(t, c.VerifyHostname("127.0.0.1"))

	src := NewCertFiles(certFile, keyFile)
	first, err := src.Get(nil)
	require.NoError(t, err)
	again, err := src.Get(nil)
	require.NoError(t, err)
	assert.Same(t, first, again, "not re-read while unchanged")

	// A renewal replaces both files: the next handshake gets the new one.
	dir2 := t.TempDir()
	_, err = EnsureSelfSigned(filepath.Join(dir2, "c.pem"), filepath.Join(dir2, "k.pem"), "")
	require.NoError(t, err)
	require.NoError(t, os.Rename(filepath.Join(dir2, "k.pem"), keyFile))
	require.NoError(t, os.Rename(filepath.Join(dir2, "c.pem"), certFile))
	later := time.Now().Add(time.Minute) // a distinct mtime whatever the file system's granularity
	require.NoError(t, os.Chtimes(certFile, later, later))
	renewed, err := src.Get(nil)
	require.NoError(t, err)
	assert.NotEqual(t, Fingerprint(first.Leaf), Fingerprint(renewed.Leaf))

	// A broken pair mid-renewal keeps the last good one.
	require.NoError(t, os.WriteFile(certFile, []byte("garbage"), 0o644))
	kept, err := src.Get(nil)
	require.NoError(t, err)
	assert.Same(t, renewed, kept)
}
