package webview

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	gosync "sync"
	"time"
)

// sessions are the logged-in browsers: a random token in a cookie maps to
// a user name and an expiry. They live in memory only (a restart logs
// everyone out); the map is keyed by the token's SHA-256, so a memory dump
// or a timing side channel on the map does not yield usable tokens.
type sessions struct {
	now func() time.Time
	ttl time.Duration

	mu gosync.Mutex
	m  map[[32]byte]session
}

type session struct {
	user    string
	expires time.Time
}

// maxSessions bounds the sessions kept; the oldest expiring go first.
const maxSessions = 10_000

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{now: now, ttl: ttl, m: map[[32]byte]session{}}
}

// create starts a session for user and returns its token.
func (s *sessions) create(user string) (string, time.Time) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics if it cannot read)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	exp := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest [32]byte
		var first time.Time
		for k, v := range s.m {
			if !v.expires.After(now) {
				delete(s.m, k)
			} else if first.IsZero() || v.expires.Before(first) {
				oldest, first = k, v.expires
			}
		}
		if len(s.m) >= maxSessions {
			delete(s.m, oldest)
		}
	}
	s.m[sha256.Sum256([]byte(tok))] = session{user: user, expires: exp}
	return tok, exp
}

// user returns the user of a live session.
func (s *sessions) user(tok string) (string, bool) {
	if tok == "" {
		return "", false
	}
	k := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return "", false
	}
	if !v.expires.After(s.now()) {
		delete(s.m, k)
		return "", false
	}
	return v.user, true
}

// end forgets a session.
func (s *sessions) end(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(tok)))
}
