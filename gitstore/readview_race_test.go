package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHistoryDuringAppliesAndMaintenance: History and PeerHead are asked
// in a tight loop while the store applies bundles from a peer, scans its
// own edits beside them (as its watcher does) and merges, and maintenance
// runs beside both (packs written, loose objects and packs removed). Every
// answer must succeed and every apply must take its bundle at once: main
// as published always names objects on disk, and the store always has the
// bundle's prerequisite.
//
// Both used to fail now and then under load ("object not found" from
// History, "missing prerequisite" from an apply): go-billy's listing of
// objects/pack failed whenever a temporary file there was renamed or
// removed during it, and go-git took the failure for "no packs"
// (listingFS, TestListingSurvivesRenames).
func TestHistoryDuringAppliesAndMaintenance(t *testing.T) {
	ctx := context.Background()
	b := newTestStore(t, "b", epoch)
	a := newTestStore(t, "a", epoch.Add(time.Hour))
	writeFile(t, a.Dir(), "seed.txt", "seed")
	scan(t, a)
	all, _ := bundleOf(t, a)
	apply(t, b, all, peerA)

	stop := make(chan struct{})
	var reads atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := b.History(ctx, "", 0)
				if err == nil {
					_, err = b.PeerHead(peerA)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				reads.Add(1)
			}
		}()
	}

	// Maintenance runs beside the applies and scans, as the automatic one
	// does: asked after every round, run while the next one goes on.
	maint := make(chan struct{}, 1)
	maintDone := make(chan error, 1)
	go func() {
		var err error
		for range maint {
			if _, e := b.maintain(ctx, maintainForce); e != nil && err == nil {
				err = e
			}
		}
		maintDone <- err
	}()

	// b's own edits are scanned beside the applies, as its watcher does:
	// main moves while a bundle is being stored.
	scanStop := make(chan struct{})
	scanDone := make(chan error, 1)
	go func() {
		for k := 0; ; k++ {
			select {
			case <-scanStop:
				scanDone <- nil
				return
			default:
			}
			if err := os.WriteFile(filepath.Join(b.Dir(), fmt.Sprintf("w%d.txt", k%9)), []byte(fmt.Sprint(k)), 0o644); err != nil {
				scanDone <- err
				return
			}
			if _, err := b.Scan(ctx); err != nil {
				scanDone <- err
				return
			}
		}
	}()

	const rounds = 20
	for i := 0; i < rounds; i++ {
		since := head(t, a)
		// a edits and sends only what is new; b edits too, so most applies
		// merge (new trees and a commit written as b's own objects).
		for k := 0; k < 3; k++ {
			writeFile(t, a.Dir(), fmt.Sprintf("a/%d/%d.txt", i%7, k), fmt.Sprintf("a %d %d", i, k))
			scan(t, a)
		}
		writeFile(t, b.Dir(), fmt.Sprintf("b/%d.txt", i%5), fmt.Sprintf("b %d", i))
		scan(t, b)
		var buf bytes.Buffer
		_, err := a.WriteBundle(ctx, &buf, []Hash{since})
		require.NoError(t, err)
		_, err = b.ApplyBundle(ctx, bytes.NewReader(buf.Bytes()), peerA)
		require.NoError(t, err, "round %d", i)
		select {
		case maint <- struct{}{}:
		default: // one is still running
		}
	}
	close(scanStop)
	require.NoError(t, <-scanDone)
	close(maint)
	require.NoError(t, <-maintDone)
	close(stop)
	wg.Wait()
	require.Positive(t, reads.Load())
	require.Empty(t, errs, "History/PeerHead failed %d of %d reads", len(errs), reads.Load())
	fsck(t, b)
}
