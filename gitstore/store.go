package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// GitDirName is the name of the git directory inside a shared folder. Its
// presence is the folder guard.
const GitDirName = ".peersync"

// tmpPrefix starts the name of every temporary file we create in the folder.
const tmpPrefix = ".peersync-tmp-"

// objectCacheSize bounds go-git's cache of decoded objects.
const objectCacheSize = 8 * cache.MiByte

const (
	mainRef          = plumbing.ReferenceName("refs/heads/main")
	defaultMaxObject = 16 << 30
)

// Config configures [Open]. The zero value of every optional field is
// documented next to it; Open never modifies the caller's Config.
type Config struct {
	// Dir is the shared folder's root. Required; it must exist and be a
	// directory.
	Dir string
	// Create makes Open create <Dir>/.peersync when it is missing. When false
	// and the marker is missing, Open returns ErrNotInitialized: a folder whose
	// marker vanished (an unmounted disk) is never treated as "all files
	// deleted".
	Create bool
	// AuthorName is the author and committer name of our commits; "" means
	// "peersync".
	AuthorName string
	// AuthorEmail is the author and committer e-mail; "" means
	// "peersync@localhost". The sync engine passes "<DeviceID>@peersync".
	AuthorEmail string
	// AllowSymlinks makes Scan record symlinks (mode 120000) and ApplyBundle
	// accept them. When false, Scan skips symlinks and bundles containing
	// them are rejected.
	AllowSymlinks bool
	// MaxObjectSize caps the size of any object in an applied bundle; 0 means
	// 16 GiB.
	MaxObjectSize int64
	// Limits bounds what one applied bundle may cost (files, bytes, depth,
	// path length, objects, spool and free disk space); each zero field
	// means its default (see Limits).
	Limits Limits
	// MaxDeleteShare and MaxDeleteCount set the mass-delete guard: a Scan or
	// a bundle checkout that would delete more than MaxDeleteShare of the
	// tracked files AND more than MaxDeleteCount files is refused with a
	// *MassDeleteError; a Scan counts with its own deletions those local
	// scans committed in the last 60 s (package documentation, "Guards").
	// 0 means 0.5 and 100; negative values are invalid.
	MaxDeleteShare float64
	MaxDeleteCount int
	// AllowMassDelete turns the mass-delete guard off; false keeps it on (see
	// also Store.AllowMassDeleteOnce).
	AllowMassDelete bool
	// Now returns the time for commit timestamps; nil means time.Now.
	Now func() time.Time
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
	// ScanProgress, if set, is told how far a long Scan has got (see
	// [ScanProgress]): at most every 250 ms once the scan has run for a
	// second, and once more with Done set when such a scan ends. It is
	// called on the scanning goroutine while the store is locked: it must
	// return quickly and must not call the store.
	ScanProgress func(ScanProgress)
}

// Store is one folder's history. All methods are safe for concurrent use.
type Store struct {
	dir, gitDir string
	opts        storeOptions

	// applyMu serializes ApplyBundle: it is held for a whole apply, mu only
	// for its last part (scan, refs, checkout), so that reads and scans go
	// on while a bundle is spooled, checked and stored (see apply.go).
	// Lock order: applyMu, then mu.
	applyMu sync.Mutex
	// pub is what readers see without waiting for any operation.
	pub published
	// views are the object storages History and WriteBundle read, each
	// with its own lock (readview.go).
	views readViews
	// maint runs maintenance in the background (maintain_auto.go).
	maint autoMaint
	// treeStats caches the stats of trees of ours met by
	// applyRun.checkTreeLimits (bounded by treeStatCacheMax); guarded by
	// applyMu, not mu.
	treeStats map[plumbing.Hash]treeStat
	// recv is the received log (see received.go), with its own mutex.
	recv received

	mu sync.Mutex // guards the fields below and serializes every write
	// closed is set by Close.
	closed bool
	guard  deleteGuard
	// st is the object and ref store on gitDir.
	st    *filesystem.Storage
	cur   headTree
	packs packState
	fst   folderState
}

// storeOptions are a Store's settings, from its Config with defaults
// filled in; fixed by Open.
type storeOptions struct {
	name, email   string
	allowSymlinks bool
	maxObject     int64
	limits        Limits
	now           func() time.Time
	log           *slog.Logger
	// The mass-delete guard's settings (see checkMassDeleteLocked).
	maxDeleteShare  float64
	maxDeleteCount  int
	allowMassDelete bool
}

// published is main as readers see it: head is published whenever main
// moves (setRefLocked), so Head reads it without waiting; shut is set by
// Close.
type published struct {
	head atomic.Pointer[plumbing.Hash]
	shut atomic.Bool
}

// readViews are the object storage History reads (rd) and the one
// WriteBundle reads (exp), each with its own lock (readview.go).
type readViews struct {
	rd, exp readView
}

// deleteGuard is the mass-delete guard's state; guarded by Store.mu.
type deleteGuard struct {
	// massDeleteOnce is set by AllowMassDeleteOnce and used up by the next
	// operation the mass-delete guard would refuse.
	massDeleteOnce bool
	// localDeletes lists, oldest first, the deletions committed by local
	// scans in the last massDeleteWindow (see checkLocalDeleteLocked).
	localDeletes []localDelete
}

// headTree is the tree of rootHead (our main), loaded lazily; root nil =
// not loaded. Guarded by Store.mu.
type headTree struct {
	root     *dirNode
	rootHead plumbing.Hash
}

// packState is the pack being written, if any; guarded by Store.mu.
type packState struct {
	// pw, when not nil, is the pack that new objects are streamed into
	// (between beginPackLocked and endPackLocked); packGen numbers the packs
	// written by this Store.
	pw      *packWriter
	packGen uint64
}

// folderState is what a Store knows of the folder on disk; guarded by
// Store.mu.
type folderState struct {
	// stats is the stat cache, loaded at Open and saved after Scan/checkout.
	stats statCache
	// disk holds the faults met on the folder's disk and its naming rules
	// (skip.go, names.go).
	disk diskState
	// meter reports a Scan's progress to Config.ScanProgress (scan.go).
	meter scanMeter
	// bigPass is set while a Scan's second pass commits its big files
	// (scan_big.go), which must not split again.
	bigPass bool
	// settle, while a watcher scan runs, is the age below which a changed
	// file counts as still being written: the scan leaves it as last
	// committed and records it in unsettled, so the watcher looks again
	// (a file caught between its truncation and its write is not
	// committed half-written). settleExempt lists paths deferred too often
	// to be deferred again. All three are set and read by Watch only.
	settle       time.Duration
	settleExempt map[string]bool
	unsettled    map[string]bool
	// prewritten, during an ApplyIncoming, holds the bundle's big files
	// written into the folder as they arrived, for the checkout to take
	// (spool_prewrite.go).
	prewritten *prewrite
}

// Open opens the history of cfg.Dir. It returns ErrNotInitialized when the
// folder has no .peersync directory and cfg.Create is false.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("gitstore: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("gitstore: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("gitstore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("gitstore: %q is not a directory", dir)
	}
	if cfg.MaxDeleteShare < 0 || cfg.MaxDeleteCount < 0 {
		return nil, errors.New("gitstore: Config.MaxDeleteShare and MaxDeleteCount must not be negative")
	}
	s := &Store{
		dir:    dir,
		gitDir: filepath.Join(dir, GitDirName),
		opts: storeOptions{
			name:            cfg.AuthorName,
			email:           cfg.AuthorEmail,
			allowSymlinks:   cfg.AllowSymlinks,
			maxObject:       cfg.MaxObjectSize,
			limits:          cfg.Limits.withDefaults(),
			now:             cfg.Now,
			log:             cfg.Logger,
			maxDeleteShare:  cfg.MaxDeleteShare,
			maxDeleteCount:  cfg.MaxDeleteCount,
			allowMassDelete: cfg.AllowMassDelete,
		},
		fst: folderState{meter: scanMeter{fn: cfg.ScanProgress}},
	}
	if s.opts.maxDeleteShare == 0 {
		s.opts.maxDeleteShare = defaultMaxDeleteShare
	}
	if s.opts.maxDeleteCount == 0 {
		s.opts.maxDeleteCount = defaultMaxDeleteCount
	}
	if s.opts.name == "" {
		s.opts.name = "peersync"
	}
	if s.opts.email == "" {
		s.opts.email = "peersync@localhost"
	}
	if s.opts.maxObject <= 0 {
		s.opts.maxObject = defaultMaxObject
	}
	if s.opts.now == nil {
		s.opts.now = time.Now
	}
	if s.opts.log == nil {
		s.opts.log = slog.New(slog.DiscardHandler)
	}
	gi, err := os.Lstat(s.gitDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !cfg.Create {
			return nil, ErrNotInitialized
		}
		if err := initGitDir(s.gitDir); err != nil {
			return nil, fmt.Errorf("gitstore: init %q: %w", s.gitDir, err)
		}
	case err != nil:
		return nil, fmt.Errorf("gitstore: %w", err)
	case !gi.IsDir():
		return nil, fmt.Errorf("gitstore: %q is not a directory", s.gitDir)
	}
	removeOrphanPacks(s.gitDir, s.opts.log)
	removeArriving(s.dir, s.opts.log)
	s.openDiskLocked()
	s.st = s.openStorage()
	s.fst.stats = loadStatCache(s.statCachePath(), s.opts.log)
	h, err := s.refLocked(mainRef)
	if err != nil {
		s.st.Close()
		return nil, err
	}
	s.pub.head.Store(&h)
	return s, nil
}

// storeOpenPacks is how many packs the Store's storage keeps open between
// reads (go-git otherwise opens and closes a pack for every object read: a
// first sync's checkout did that once per file).
const storeOpenPacks = 8

// openStorage returns a new go-git storage on the git directory for s.st.
// Objects over largeObjectThreshold are read streaming, not in memory;
// go-git's object cache is held to objectCacheSize (its default, 96 MiB,
// would dominate the memory of a first sync's checkout). It keeps up to
// storeOpenPacks packs open: maintenance closes it (under mu) before it
// removes packs, and opens a new one.
func (s *Store) openStorage() *filesystem.Storage {
	return filesystem.NewStorageWithOptions(objectFS{newListingFS(s.gitDir), s.fst.disk.mask}, cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObjectThreshold, MaxOpenDescriptors: storeOpenPacks})
}

// initGitDir creates an empty git directory whose HEAD is refs/heads/main.
// It is built under a temporary name and renamed into place, so a crash
// never leaves a half-made .peersync (our temporary names are skipped by
// Scan).
func initGitDir(gitDir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(gitDir), tmpPrefix+"init-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags", "refs/peers"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o777); err != nil {
			return err
		}
	}
	// tmp is 0700 (os.MkdirTemp), and stays so: it keeps every version of
	// every file, private ones too.
	if err := os.WriteFile(filepath.Join(tmp, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		return err
	}
	st := filesystem.NewStorage(osfs.New(tmp), cache.NewObjectLRUDefault())
	c := config.NewConfig()
	c.Core.IsBare = true
	err = st.SetConfig(c)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, gitDir)
}

// Close releases the store. It is idempotent; later calls on s return
// ErrClosed. It stops background maintenance (a run in progress stops at
// its next step; what it wrote is kept or thrown away as a kill would
// leave it, see maintain.go) and waits for a running export.
func (s *Store) Close() error {
	s.pub.shut.Store(true)
	s.maint.stop()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.st.Close()
	s.mu.Unlock()
	return errors.Join(err, s.views.exp.close(), s.views.rd.close())
}

// Dir returns the absolute path of the folder root.
func (s *Store) Dir() string { return s.dir }

// Head returns refs/heads/main, or the zero Hash if there is no commit yet.
// It never waits for another operation (it reads the value published when
// main last moved).
func (s *Store) Head() (Hash, error) {
	if s.pub.shut.Load() {
		return Hash{}, ErrClosed
	}
	return fromPlumbing(*s.pub.head.Load()), nil
}

// PeerHead returns refs/peers/<peer>/main, the last bundle head applied from
// peer, or the zero Hash if none. peer is a DeviceID string: A-Z, 2-7 and '-'.
// Like Head, it never waits for a write (it reads the ref file, which is
// replaced atomically, through the read view).
func (s *Store) PeerHead(peer string) (Hash, error) {
	ref, err := peerRef(peer)
	if err != nil {
		return Hash{}, err
	}
	head, err := s.Head()
	if err != nil {
		return Hash{}, err
	}
	st, unlock, err := s.view(head.plumbing())
	if err != nil {
		return Hash{}, err
	}
	defer unlock()
	r, err := st.Reference(ref)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Hash{}, nil
	}
	if err != nil {
		return Hash{}, fmt.Errorf("gitstore: read %s: %w", ref, err)
	}
	return fromPlumbing(r.Hash()), nil
}

// HasCommit reports whether the commit h is in the store.
func (s *Store) HasCommit(h Hash) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	return s.hasCommitLocked(h.plumbing())
}

func (s *Store) hasCommitLocked(h plumbing.Hash) (bool, error) { return hasCommitIn(s.st, h) }

// hasCommitIn reports whether st holds the commit h.
func hasCommitIn(st *filesystem.Storage, h plumbing.Hash) (bool, error) {
	o, err := st.EncodedObject(plumbing.CommitObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gitstore: %w", err)
	}
	return o.Type() == plumbing.CommitObject, nil
}

// peerRef validates peer as a ref component and returns its ref name.
func peerRef(peer string) (plumbing.ReferenceName, error) {
	if peer == "" || len(peer) > 128 || strings.HasPrefix(peer, "-") {
		return "", fmt.Errorf("gitstore: invalid peer %q", peer)
	}
	for _, r := range peer {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7' || r == '-') {
			return "", fmt.Errorf("gitstore: invalid peer %q", peer)
		}
	}
	return plumbing.ReferenceName("refs/peers/" + peer + "/main"), nil
}

func (s *Store) refLocked(name plumbing.ReferenceName) (plumbing.Hash, error) {
	r, err := s.st.Reference(name)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitstore: read %s: %w", name, err)
	}
	return r.Hash(), nil
}

// setRefLocked points the loose ref name at h. Not go-git's SetReference:
// it truncates the ref file in place, so a crash in between leaves an empty
// ref. The new content goes to a temporary file in the git directory (not
// under refs/, where git would read it as a ref), is synced, then renamed
// over the ref: a crash leaves the old or the new value. Callers write the
// objects first, so a ref never names a missing object.
func (s *Store) setRefLocked(name plumbing.ReferenceName, h plumbing.Hash) error {
	p := filepath.Join(s.gitDir, filepath.FromSlash(name.String()))
	err := os.MkdirAll(filepath.Dir(p), 0o755)
	if err == nil {
		err = writeFileAtomicIn(s.gitDir, p, []byte(h.String()+"\n"), 0o644)
	}
	if err != nil {
		return fmt.Errorf("gitstore: set %s: %w", name, err)
	}
	if name == mainRef {
		s.pub.head.Store(&h)
		s.maintainSoon()
	}
	return nil
}

// writeObjectLocked stores an object unless it already exists.
func (s *Store) writeObjectLocked(t plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	if s.packs.pw != nil {
		return s.packs.pw.writeObject(t, data)
	}
	h := plumbing.ComputeHash(t, data)
	if s.st.HasEncodedObject(h) == nil {
		return h, nil
	}
	o := s.st.NewEncodedObject()
	o.SetType(t)
	o.SetSize(int64(len(data)))
	w, err := o.Writer()
	if err != nil {
		return h, err
	}
	if _, err := w.Write(data); err != nil {
		return h, err
	}
	if err := w.Close(); err != nil {
		return h, err
	}
	if _, err := s.st.SetEncodedObject(o); err != nil {
		return h, fmt.Errorf("gitstore: write object: %w", err)
	}
	return h, nil
}

func (s *Store) commitLocked(h plumbing.Hash) (*object.Commit, error) {
	c, err := object.GetCommit(s.st, h)
	if err != nil {
		return nil, fmt.Errorf("gitstore: commit %s: %w", h, err)
	}
	return c, nil
}

// signature returns our author/committer signature at the current time.
func (s *Store) signature() object.Signature {
	return object.Signature{Name: s.opts.name, Email: s.opts.email, When: s.opts.now().Truncate(time.Second)}
}

// newCommitLocked writes a commit and returns its hash.
func (s *Store) newCommitLocked(tree plumbing.Hash, parents []plumbing.Hash, msg string, sig object.Signature) (plumbing.Hash, error) {
	c := &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      msg,
		TreeHash:     tree,
		ParentHashes: parents,
	}
	o := &plumbing.MemoryObject{}
	if err := c.Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	// A canonical merge commit may already exist (made by the peer too).
	r, err := o.Reader()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return s.writeObjectLocked(plumbing.CommitObject, data)
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gitstore: %w", err)
	}
	return nil
}
