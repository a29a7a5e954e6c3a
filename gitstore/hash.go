package gitstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Hash is a git object name (SHA-1). The zero value means "no commit".
type Hash [20]byte

// String returns the hash as 40 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash ("no commit").
func (h Hash) IsZero() bool { return h == Hash{} }

// LogValue implements [slog.LogValuer].
func (h Hash) LogValue() slog.Value { return slog.StringValue(h.String()) }

// MarshalText implements [encoding.TextMarshaler]; the zero hash marshals as
// 40 zeros.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts exactly 40
// hex digits (either case) and the empty string (zero hash).
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*h = Hash{}
		return nil
	}
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 40 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 40 {
		return h, fmt.Errorf("gitstore: invalid hash %q: want 40 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("gitstore: invalid hash %q: %w", s, err)
	}
	return h, nil
}

func (h Hash) plumbing() plumbing.Hash { return plumbing.Hash(h) }

func fromPlumbing(h plumbing.Hash) Hash { return Hash(h) }

var (
	// ErrNotInitialized is returned by [Open] when <Dir>/.peersync does not
	// exist and Config.Create is false (the folder guard).
	ErrNotInitialized = errors.New("gitstore: folder not initialized (no .peersync directory)")
	// ErrClosed is returned by every method called after [Store.Close].
	ErrClosed = errors.New("gitstore: store closed")
	// ErrNothingToSend is returned by [Store.WriteBundle] when there is no
	// commit or the peer already has our head.
	ErrNothingToSend = errors.New("gitstore: nothing to send")
)

// BundleError is returned by [Store.ApplyBundle] when a bundle is rejected.
// Path (a slash path inside the folder) or Object names the offending entry
// when there is one; Reason says what was wrong. Nothing was written when a
// BundleError is returned.
type BundleError struct {
	Path   string // offending path, "" if the problem is not about a path
	Object Hash   // offending object or commit, zero if unknown
	Reason string // short lowercase description
	Err    error  // underlying error, may be nil
}

// Error describes the rejection, naming the path or object when known.
func (e *BundleError) Error() string {
	msg := "gitstore: bundle rejected: " + e.Reason
	if e.Path != "" {
		msg += fmt.Sprintf(": path %q", e.Path)
	}
	if !e.Object.IsZero() {
		msg += ": object " + e.Object.String()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *BundleError) Unwrap() error { return e.Err }

// Action is what a commit made by [Store.Scan] did to its one file.
type Action string

// The actions of a scan commit; they are also the first word of the commit
// message.
const (
	ActionAdd    Action = "add"
	ActionModify Action = "modify"
	ActionDelete Action = "delete"
)

// Change describes one commit made by [Store.Scan].
type Change struct {
	Commit Hash      // the commit
	Action Action    // add, modify or delete
	Path   string    // slash-separated path relative to the folder root
	Time   time.Time // committer time
	Author string    // "Name <email>", as the commit's maker wrote it
	// From is the DeviceID of the peer whose bundle delivered the commit
	// (authenticated by the transport, unlike Author); "" for a commit made
	// here.
	From string
}

// BundleInfo describes a bundle written by [Store.WriteBundle].
type BundleInfo struct {
	Head          Hash   // the commit refs/heads/main points to in the bundle
	Prerequisites []Hash // commits the receiver must already have, sorted
	Objects       int    // number of objects in the pack
}

// ApplyKind says how [Store.ApplyBundle] integrated a bundle.
type ApplyKind int

// The ways a bundle can be integrated.
const (
	UpToDate    ApplyKind = iota // the bundle head was already in our history
	FastForward                  // our main moved forward to the bundle head
	Merged                       // a merge commit was made
)

// String returns "up-to-date", "fast-forward" or "merged".
func (k ApplyKind) String() string {
	switch k {
	case UpToDate:
		return "up-to-date"
	case FastForward:
		return "fast-forward"
	case Merged:
		return "merged"
	}
	return fmt.Sprintf("ApplyKind(%d)", int(k))
}

// ApplyResult describes what [Store.ApplyBundle] did.
type ApplyResult struct {
	Head      Hash      // our refs/heads/main afterwards
	PeerHead  Hash      // the bundle head, now refs/peers/<peer>/main
	Kind      ApplyKind // how it was integrated
	Changed   []string  // paths written or deleted in the folder, sorted
	Conflicts []string  // conflict copies created by the merge, sorted
	// Skipped lists, sorted, the files of the new tree that the checkout
	// had to write (new, changed or deleted) but did not: this device
	// cannot hold their names (wrapping [ErrNameNotHoldable]), or their
	// directory may not be entered or written to (wrapping
	// fs.ErrPermission). They stay in the history; see also
	// [Store.Skipped].
	Skipped []SkippedPath
	// IgnoreRules lists, sorted, the .peersyncignore files the bundle
	// added, changed or deleted here: the rules of what this device syncs
	// changed by a peer's hand, to show the user (see [IgnoreRulesError]).
	IgnoreRules []string
}
