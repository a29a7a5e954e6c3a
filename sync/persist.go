package sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/internal/atomicfile"
)

// What an Engine keeps between runs is a few small documents, each read
// whole at New and replaced whole when it changes:
//
//   - config.json: what the user chose (name, folders, peers, schedules,
//     limits; the settings of later features go there too, as fields of
//     config in state.go);
//   - table.json: what the engine learned (the head each peer is known to
//     have of each folder);
//   - pending.json: devices and folder offers waiting for an answer.
//
// The Engine reaches them only through stateStore, so the rules of
// persistence live in one place: a missing document is the default value,
// a corrupt one is an error that names it (a user's configuration is never
// silently reset), and a save replaces the document atomically (a crash
// leaves the old or the new version, never a mix). homeDir is the
// implementation on the state directory; tests wrap it to fail a save and
// check that nothing is lost.

// stateDoc names one document of the engine's state.
type stateDoc string

// The documents of the engine's state.
const (
	docConfig   stateDoc = "config.json"  // what the user chose: name, folders, peers
	docTable    stateDoc = "table.json"   // what the engine learned: last known revisions
	docPending  stateDoc = "pending.json" // what waits for an answer (pending.go)
	docMailSent stateDoc = mailSentFile   // deposits left at the rendezvous (mailbox_send.go)
)

// stateStore keeps the engine's documents.
type stateStore interface {
	// load reads doc into v. A missing document leaves v untouched and is
	// not an error; an unreadable or corrupt one is, naming the document.
	load(doc stateDoc, v any) error
	// save replaces doc with v, atomically.
	save(doc stateDoc, v any) error
	// close releases the store (the home lock of an owner).
	close() error
}

// homeDir is the stateStore on a state directory: one JSON file per
// document (0600, in a 0700 directory), and, for the Engine that owns the
// home, the home lock (homelock.go) held until close.
type homeDir struct {
	dir  string
	lock *os.File // nil when the home is shared
}

// openHome creates dir if needed and, unless shared, takes its lock (a
// *HomeInUseError when another Engine holds it) and removes what a crash
// left in its tmp directory.
func openHome(dir string, shared bool) (*homeDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sync: state directory: %w", err)
	}
	h := &homeDir{dir: dir}
	if shared {
		return h, nil
	}
	lock, err := lockHome(dir)
	if err != nil {
		return nil, err
	}
	h.lock = lock
	cleanTemp(filepath.Join(dir, "tmp")) // only the owner has temporary files
	return h, nil
}

// path returns the file of doc.
func (h *homeDir) path(doc stateDoc) string { return filepath.Join(h.dir, string(doc)) }

func (h *homeDir) load(doc stateDoc, v any) error {
	p := h.path(doc)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync: read state: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("sync: state file %q is corrupt (fix or remove it): %w", p, err)
	}
	return nil
}

func (h *homeDir) save(doc stateDoc, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("sync: encode %s: %w", doc, err)
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := atomicfile.WriteFile(h.path(doc), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("sync: save %s: %w", doc, err)
	}
	return nil
}

func (h *homeDir) close() error {
	if h.lock == nil {
		return nil
	}
	err := h.lock.Close()
	h.lock = nil
	return err
}
