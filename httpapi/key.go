package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/peersync/peersync/internal/atomicfile"
)

// KeyFile is the name of the API key's file in the state directory.
const KeyFile = "apikey"

// LoadOrCreateKey returns the API key stored in <home>/apikey (one line),
// creating it with 32 random bytes (base64url) and mode 0600 when the file
// does not exist. A key file readable by other users is refused, as is an
// empty one: delete it to get a new key.
func LoadOrCreateKey(home string) (string, error) {
	path := filepath.Join(home, KeyFile)
	key, err := LoadKey(home)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("httpapi: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("httpapi: %w", err)
	}
	key = base64.RawURLEncoding.EncodeToString(b)
	if err := atomicfile.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("httpapi: write API key: %w", err)
	}
	return key, nil
}

// LoadKey returns the API key stored in <home>/apikey; an error wrapping
// fs.ErrNotExist if there is none.
func LoadKey(home string) (string, error) {
	path := filepath.Join(home, KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("httpapi: API key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("httpapi: API key %s is readable by other users (mode %v): chmod 600 it, or delete it for a new key", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("httpapi: API key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" || strings.ContainsAny(key, " \t\r\n") {
		return "", fmt.Errorf("httpapi: API key %s is empty or not one line: delete it for a new key", path)
	}
	return key, nil
}
