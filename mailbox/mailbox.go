package mailbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/deviceid"
)

// Defaults of Limits' zero fields.
const (
	DefaultQuota    = 256 << 20
	DefaultMaxItems = 256
	DefaultExpiry   = 30 * 24 * time.Hour
)

// Errors callers may branch on.
var (
	// ErrTooLarge: a deposit larger than the recipient's whole quota.
	ErrTooLarge = errors.New("mailbox: deposit larger than the recipient's quota")
	// ErrShort: the deposit's stream ended before its declared size.
	ErrShort = errors.New("mailbox: deposit shorter than declared")
	// ErrNotFound: no such deposit in that recipient's box.
	ErrNotFound = errors.New("mailbox: no such deposit")
)

// Limits bound what one recipient's box holds. Zero fields take the
// defaults above.
type Limits struct {
	Quota    int64         // bytes per recipient
	MaxItems int           // deposits per recipient
	Expiry   time.Duration // how long a deposit is kept
}

// Config configures a Store.
type Config struct {
	Dir    string // where the boxes live; created if missing. Required.
	Limits Limits
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Item describes one deposit: everything the store knows of it.
type Item struct {
	ID   string      // 32 hex digits, made by the store
	From deviceid.ID // the device that deposited it
	To   deviceid.ID // the device it waits for
	Size int64       // bytes
	At   time.Time   // when it arrived
}

// Store holds the boxes of every recipient. It is safe for concurrent use.
type Store struct {
	dir string
	lim Limits
	now func() time.Time

	mu       gosync.Mutex
	boxes    map[deviceid.ID][]Item    // by recipient, oldest first
	bytes    int64                     // the size of every deposit held
	receipts map[deviceid.ID][]Receipt // by sender, oldest first; in memory only
}

// Receipt tells a sender what became of one of its deposits: its
// recipient took it (Applied: and applied it; false: and refused it).
type Receipt struct {
	ID      string
	To      deviceid.ID
	Applied bool
}

// maxReceipts bounds the receipts kept per sender (the oldest go).
const maxReceipts = 256

var idRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Open opens (creating it if needed) the store in cfg.Dir and indexes the
// deposits there. Files it did not write are left alone and not listed.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("mailbox: Config.Dir is required")
	}
	l := cfg.Limits
	if l.Quota <= 0 {
		l.Quota = DefaultQuota
	}
	if l.MaxItems <= 0 {
		l.MaxItems = DefaultMaxItems
	}
	if l.Expiry <= 0 {
		l.Expiry = DefaultExpiry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{dir: cfg.Dir, lim: l, now: cfg.Now, boxes: map[deviceid.ID][]Item{}, receipts: map[deviceid.ID][]Receipt{}}
	tmp := filepath.Join(cfg.Dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	if ents, err := os.ReadDir(tmp); err == nil {
		for _, e := range ents { // a crash's half-written deposits
			_ = os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	for _, e := range ents {
		to, err := deviceid.Parse(e.Name())
		if err != nil || !e.IsDir() || e.Name() != to.String() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(cfg.Dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("mailbox: %w", err)
		}
		for _, f := range files {
			it, ok := parseName(f.Name())
			if !ok || !f.Type().IsRegular() {
				continue
			}
			fi, err := f.Info()
			if err != nil {
				continue
			}
			it.To, it.Size = to, fi.Size()
			s.boxes[to] = append(s.boxes[to], it)
			s.bytes += it.Size
		}
		slices.SortFunc(s.boxes[to], func(a, b Item) int { return a.At.Compare(b.At) })
	}
	return s, nil
}

// name is the file name of a deposit: arrival, sender, ID.
func (it Item) name() string {
	return fmt.Sprintf("%019d.%s.%s", it.At.UnixNano(), it.From, it.ID)
}

func parseName(n string) (Item, bool) {
	parts := strings.Split(n, ".")
	if len(parts) != 3 || !idRe.MatchString(parts[2]) {
		return Item{}, false
	}
	ns, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || ns < 0 {
		return Item{}, false
	}
	from, err := deviceid.Parse(parts[1])
	if err != nil || parts[1] != from.String() {
		return Item{}, false
	}
	return Item{ID: parts[2], From: from, At: time.Unix(0, ns)}, true
}

func (s *Store) path(it Item) string {
	return filepath.Join(s.dir, it.To.String(), it.name())
}

// Put stores a deposit of exactly size bytes read from r, from one device
// to another, and returns it. Once it is stored, the deposits of from to
// named in replaces are removed, then the recipient's oldest deposits as
// long as its box is over its limits; those pushed out are returned. A
// deposit larger than the quota is refused before anything is read
// (ErrTooLarge); a stream that ends early stores nothing (ErrShort).
func (s *Store) Put(from, to deviceid.ID, r io.Reader, size int64, replaces []string) (Item, []Item, error) {
	switch {
	case size <= 0:
		return Item{}, nil, fmt.Errorf("mailbox: deposit of %d bytes", size)
	case size > s.lim.Quota:
		return Item{}, nil, fmt.Errorf("%w (%d bytes, quota %d)", ErrTooLarge, size, s.lim.Quota)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	it := Item{ID: hex.EncodeToString(id[:]), From: from, To: to, Size: size, At: s.now()}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return Item{}, nil, fmt.Errorf("mailbox: %w", err)
	}
	tmp := f.Name()
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n < size {
		err = fmt.Errorf("%w (%d of %d bytes)", ErrShort, n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Join(s.dir, to.String()), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp, s.path(it))
	}
	if err != nil {
		_ = os.Remove(tmp)
		if !errors.Is(err, ErrShort) {
			err = fmt.Errorf("mailbox: store deposit: %w", err)
		}
		return Item{}, nil, err
	}
	syncDir(filepath.Join(s.dir, to.String()))

	s.mu.Lock()
	box := append(s.boxes[to], it)
	s.bytes += size
	var gone []Item
	keep := box[:0]
	for _, o := range box {
		if o.ID != it.ID && o.From == from && slices.Contains(replaces, o.ID) {
			gone = append(gone, o)
			s.bytes -= o.Size
			continue
		}
		keep = append(keep, o)
	}
	box = keep
	var used int64
	for _, o := range box {
		used += o.Size
	}
	var dropped []Item
	for (used > s.lim.Quota || len(box) > s.lim.MaxItems) && box[0].ID != it.ID {
		dropped = append(dropped, box[0])
		used -= box[0].Size
		s.bytes -= box[0].Size
		box = box[1:]
	}
	s.boxes[to] = slices.Clip(box)
	s.mu.Unlock()
	for _, o := range append(gone, dropped...) {
		_ = os.Remove(s.path(o))
	}
	return it, dropped, nil
}

// List returns the deposits waiting for to, oldest first, leaving out
// those past their expiry.
func (s *Store) List(to deviceid.ID) []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.now().Add(-s.lim.Expiry)
	var out []Item
	for _, it := range s.boxes[to] {
		if it.At.After(cut) {
			out = append(out, it)
		}
	}
	return out
}

// Read opens the deposit id of to's box. The file stays readable even if
// the deposit is deleted meanwhile.
func (s *Store) Read(to deviceid.ID, id string) (*os.File, Item, error) {
	s.mu.Lock()
	i := slices.IndexFunc(s.boxes[to], func(it Item) bool { return it.ID == id })
	var it Item
	if i >= 0 {
		it = s.boxes[to][i]
	}
	s.mu.Unlock()
	if i < 0 {
		return nil, Item{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	f, err := os.Open(s.path(it))
	if err != nil {
		return nil, Item{}, fmt.Errorf("mailbox: %w", err)
	}
	return f, it, nil
}

// Delete removes the deposit id from to's box (the recipient has it). A
// deposit that is not there is no error: it was deleted already.
func (s *Store) Delete(to deviceid.ID, id string) error {
	s.mu.Lock()
	box := s.boxes[to]
	i := slices.IndexFunc(box, func(it Item) bool { return it.ID == id })
	if i < 0 {
		s.mu.Unlock()
		return nil
	}
	it := box[i]
	s.boxes[to] = slices.Delete(box, i, i+1)
	s.bytes -= it.Size
	s.mu.Unlock()
	if err := os.Remove(s.path(it)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mailbox: %w", err)
	}
	return nil
}

// Take removes the deposit id from to's box as Delete does, because its
// recipient took it, and keeps a receipt for its sender (see Receipts).
func (s *Store) Take(to deviceid.ID, id string, applied bool) error {
	s.mu.Lock()
	i := slices.IndexFunc(s.boxes[to], func(it Item) bool { return it.ID == id })
	if i >= 0 {
		from := s.boxes[to][i].From
		r := append(s.receipts[from], Receipt{ID: id, To: to, Applied: applied})
		if len(r) > maxReceipts {
			r = r[len(r)-maxReceipts:]
		}
		s.receipts[from] = r
	}
	s.mu.Unlock()
	return s.Delete(to, id)
}

// Receipts returns the receipts for from's deposits taken since the last
// call, oldest first, and forgets them. They are kept in memory only (at
// most 256 per sender): after a restart, a sender learns nothing of what
// was taken before it.
func (s *Store) Receipts(from deviceid.ID) []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.receipts[from]
	delete(s.receipts, from)
	return r
}

// HeldFrom returns the IDs of from's deposits still held, for any
// recipient (a sender learns which of its deposits expired or were
// pushed out: those neither held nor in a receipt).
func (s *Store) HeldFrom(from deviceid.ID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, box := range s.boxes {
		for _, it := range box {
			if it.From == from {
				out = append(out, it.ID)
			}
		}
	}
	return out
}

// Expire removes the deposits older than Limits.Expiry and returns them.
func (s *Store) Expire() []Item {
	s.mu.Lock()
	cut := s.now().Add(-s.lim.Expiry)
	var gone []Item
	for to, box := range s.boxes {
		keep := box[:0]
		for _, it := range box {
			if it.At.After(cut) {
				keep = append(keep, it)
				continue
			}
			gone = append(gone, it)
			s.bytes -= it.Size
		}
		if len(keep) == 0 {
			delete(s.boxes, to)
		} else {
			s.boxes[to] = keep
		}
	}
	s.mu.Unlock()
	for _, it := range gone {
		_ = os.Remove(s.path(it))
	}
	return gone
}

// Bytes returns the size of every deposit held, all recipients together.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// syncDir makes a rename in dir durable; failure only weakens durability.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Limits returns the limits in force (defaults applied).
func (s *Store) Limits() Limits { return s.lim }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }
