package gitstore

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// The received log: which authenticated peer delivered each commit that
// came in a bundle. A commit's author is whatever its maker wrote; the
// peer that delivered it is known for sure (ApplyBundle is given the
// DeviceID the transport authenticated). The log is the file
// .peersync/received, one line per commit, appended when the commit is
// stored:
//
//	<40 hex digits of the commit> SP <DeviceID> LF
//
// It is appended and synced after the bundle's pack is complete and before
// any ref moves, so every commit a ref reaches has its line (a crash in
// between leaves lines for commits that are stored but not yet reachable,
// which are true all the same). A line cut short by a crash is skipped when
// read, and the next append starts on a new line. The first line for a
// commit wins: a commit relayed again later keeps its first deliverer.
// Reading it costs one pass over the file, done once per Store and then
// followed incrementally; it takes about 100 bytes per received commit.
const receivedName = "received"

// received is the in-memory copy of the received log.
type received struct {
	mu    sync.Mutex // guards the fields below; never held while waiting for the Store's
	from  map[plumbing.Hash]string
	peers map[string]string // interned DeviceIDs
	off   int64             // bytes of the file read into from
}

func (s *Store) receivedPath() string { return filepath.Join(s.gitDir, receivedName) }

// loadLocked reads the lines appended since the last call.
func (r *received) loadLocked(path string) error {
	if r.from == nil {
		r.from, r.peers = map[plumbing.Hash]string{}, map[string]string{}
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(r.off, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF {
			return nil // a partial last line: read again once completed
		} else if err == bufio.ErrBufferFull {
			// Not one of ours: skip to the end of the line.
			n := int64(len(line))
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
			}
			if err != nil {
				return nil
			}
			r.off += n
			continue
		} else if err != nil {
			return err
		}
		r.off += int64(len(line))
		r.parse(line)
	}
}

// parse records one line; malformed lines (a crash's torn write) are
// skipped.
func (r *received) parse(line []byte) {
	hexHash, peer, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte(" "))
	var h plumbing.Hash
	if !ok || len(hexHash) != 40 || len(peer) == 0 {
		return
	}
	if _, err := hex.Decode(h[:], hexHash); err != nil {
		return
	}
	if _, err := peerRef(string(peer)); err != nil {
		return
	}
	if _, met := r.from[h]; met {
		return
	}
	p, ok := r.peers[string(peer)]
	if !ok {
		p = string(peer)
		r.peers[p] = p
	}
	r.from[h] = p
}

// receivedLookup reads what was appended to the received log and returns
// a function giving the peer that delivered a commit, "" if none did.
func (s *Store) receivedLookup() (func(plumbing.Hash) string, error) {
	r := &s.recv
	r.mu.Lock()
	err := r.loadLocked(s.receivedPath())
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("gitstore: read %s: %w", receivedName, err)
	}
	return func(h plumbing.Hash) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.from[h]
	}, nil
}

// recordReceived appends a line for each commit of commits, delivered by
// peer, that has none yet, and syncs the file.
func (s *Store) recordReceived(commits []plumbing.Hash, peer string) error {
	r := &s.recv
	r.mu.Lock()
	defer r.mu.Unlock()
	path := s.receivedPath()
	if err := r.loadLocked(path); err != nil {
		return fmt.Errorf("gitstore: read %s: %w", receivedName, err)
	}
	var buf bytes.Buffer
	for _, h := range commits {
		if _, met := r.from[h]; !met {
			fmt.Fprintf(&buf, "%s %s\n", h, peer)
		}
	}
	if buf.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("gitstore: %w", err)
	}
	defer f.Close()
	// A line cut short by a crash: end it, so ours start on their own.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], fi.Size()-1); err == nil && last[0] != '\n' {
			buf = *bytes.NewBuffer(append([]byte("\n"), buf.Bytes()...))
		}
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("gitstore: append %s: %w", receivedName, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("gitstore: sync %s: %w", receivedName, err)
	}
	return r.loadLocked(path)
}
