package webview

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/peersync/peersync/internal/atomicfile"
)

// AllFolders, as the only entry of User.Folders, grants every folder the
// server has, present and future.
const AllFolders = "*"

// ErrNoUser is returned by Users.Remove for a name that is not in the file.
var ErrNoUser = errors.New("webview: no such user")

// User is one account of the web view.
type User struct {
	// Name is the login name: letters, digits, '.', '_', '-' and '@', at
	// most 64.
	Name string `json:"name"`
	// Hash is the password's argon2id hash in the PHC string format
	// ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
	Hash string `json:"hash"`
	// Folders are the folder IDs the user may read; [AllFolders] alone
	// grants all.
	Folders []string `json:"folders"`
	// Created is when the account (or its password) was last set.
	Created time.Time `json:"created"`
}

// Grants reports whether the user may read folder id.
func (u User) Grants(id string) bool {
	return slices.Contains(u.Folders, AllFolders) || slices.Contains(u.Folders, id)
}

// Users is the users file: JSON, mode 0600, written atomically (temporary
// file, then rename). A running web view re-reads it when it changes, so
// `server user add|remove` take effect at once, sessions included.
type Users struct {
	path string

	mu    gosync.Mutex
	cache map[string]User // by name; nil until loaded
	stamp fileStamp       // of the file cache was read from
}

// fileStamp tells whether the file changed since it was read: it is
// replaced by a rename, so a change is a new file (os.SameFile compares
// device and inode), or an edit in place (time or size).
type fileStamp struct {
	fi os.FileInfo // nil: no file
}

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.ModTime().Equal(b.fi.ModTime()) && a.fi.Size() == b.fi.Size()
}

type usersFile struct {
	Users []User `json:"users"`
}

// OpenUsers returns the users file at path; it need not exist yet (no
// users).
func OpenUsers(path string) *Users { return &Users{path: path} }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// MinPasswordLen is the shortest password Add accepts, in bytes.
const MinPasswordLen = 8

// maxPasswordLen bounds what a login form may make us hash.
const maxPasswordLen = 1024

// Add creates the user, or replaces the password and grants of an existing
// one (it returns true then). folders must be folder IDs or [AllFolders].
func (u *Users) Add(name, password string, folders []string) (replaced bool, err error) {
	if !nameRE.MatchString(name) {
		return false, fmt.Errorf("webview: user name %q: letters, digits, '.', '_', '-' and '@', at most 64", name)
	}
	if len(password) < MinPasswordLen {
		return false, fmt.Errorf("webview: password too short: at least %d characters", MinPasswordLen)
	}
	if len(password) > maxPasswordLen {
		return false, fmt.Errorf("webview: password too long: at most %d bytes", maxPasswordLen)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return false, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	all, err := u.loadLocked()
	if err != nil {
		return false, err
	}
	_, replaced = all[name]
	all[name] = User{Name: name, Hash: hash, Folders: slices.Clone(folders), Created: time.Now().UTC()}
	return replaced, u.saveLocked(all)
}

// Remove deletes the user; its sessions end with its next request.
func (u *Users) Remove(name string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	all, err := u.loadLocked()
	if err != nil {
		return err
	}
	if _, ok := all[name]; !ok {
		return fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	delete(all, name)
	return u.saveLocked(all)
}

// List returns the users sorted by name.
func (u *Users) List() ([]User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	all, err := u.loadLocked()
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(all))
	for _, x := range all {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Lookup returns the user called name as the file says now.
func (u *Users) Lookup(name string) (User, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	all, err := u.loadLocked()
	if err != nil {
		return User{}, false, err
	}
	x, ok := all[name]
	return x, ok, nil
}

// Verify checks name's password. For an unknown name it still spends the
// time of one hash, so the answer's delay does not tell which names exist.
func (u *Users) Verify(name, password string) (User, bool, error) {
	x, ok, err := u.Lookup(name)
	if err != nil {
		return User{}, false, err
	}
	hash := x.Hash
	if !ok {
		hash = dummyHash()
	}
	match, err := checkPassword(hash, password)
	if err != nil && ok {
		return User{}, false, fmt.Errorf("webview: user %q: %w", name, err)
	}
	return x, ok && match, nil
}

// loadLocked returns the users, re-reading the file if it changed.
func (u *Users) loadLocked() (map[string]User, error) {
	fi, err := os.Stat(u.path)
	var st fileStamp
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("webview: users file: %w", err)
	default:
		st = fileStamp{fi: fi}
	}
	if u.cache != nil && st.same(u.stamp) {
		return maps.Clone(u.cache), nil
	}
	all := map[string]User{}
	if st.fi != nil {
		b, err := os.ReadFile(u.path)
		if err != nil {
			return nil, fmt.Errorf("webview: users file: %w", err)
		}
		var f usersFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("webview: users file %s: %w", u.path, err)
		}
		for _, x := range f.Users {
			all[x.Name] = x
		}
	}
	u.cache, u.stamp = all, st
	return maps.Clone(all), nil
}

// saveLocked writes the file atomically, mode 0600.
func (u *Users) saveLocked(all map[string]User) error {
	f := usersFile{Users: make([]User, 0, len(all))}
	for _, x := range all {
		f.Users = append(f.Users, x)
	}
	slices.SortFunc(f.Users, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(u.path), 0o700); err != nil {
		return fmt.Errorf("webview: users file: %w", err)
	}
	if err := atomicfile.WriteFile(u.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("webview: users file: %w", err)
	}
	u.cache = nil // re-read (and re-stamped) on next use
	return nil
}

// The argon2id parameters of new hashes: OWASP's recommended minimum
// (19 MiB, 2 passes, 1 lane), so a small server answers a login in tens of
// milliseconds. Each hash records its parameters, so they can be raised
// later without invalidating old hashes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword compares password with a PHC argon2id hash, in constant
// time. Parameters beyond sane bounds are refused (a hostile users file
// must not make a login cost gigabytes).
func checkPassword(phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("password hash is not argon2id")
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, fmt.Errorf("argon2 version %q not supported", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("argon2 parameters %q: %v", parts[3], err)
	}
	if m < 8 || m > 1<<20 || t < 1 || t > 16 || p < 1 || p > 16 {
		return false, fmt.Errorf("argon2 parameters %q out of bounds", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("argon2 salt: %v", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errors.New("argon2 hash malformed")
	}
	if len(password) > maxPasswordLen {
		return false, nil
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var dummy = gosync.OnceValue(func() string {
	h, _ := hashPassword("no user has this password")
	return h
})

func dummyHash() string { return dummy() }

// UsersFile returns the users file's place in a peersync home directory.
func UsersFile(home string) string { return filepath.Join(home, "webusers.json") }
