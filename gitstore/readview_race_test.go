package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHistoryDuringAppliesAndMaintenance: History and PeerHead are asked
// in a tight loop while the store applies bundles from a peer, merges them
// with its own scans and runs maintenance (packs written, loose objects and
// packs removed). Every answer must succeed: main as published always
// names objects the read view finds. The mesh test saw a transient
// "object not found" from History while bundles were applied.
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
		apply(t, b, buf.Bytes(), peerA)
		// b's merges go back to a now and then, as between two peers.
		if i%4 == 3 {
			bb, _ := bundleOf(t, b, head(t, a))
			apply(t, a, bb, peerB)
		}
		select {
		case maint <- struct{}{}:
		default: // one is still running
		}
	}
	close(maint)
	require.NoError(t, <-maintDone)
	close(stop)
	wg.Wait()
	require.Positive(t, reads.Load())
	require.Empty(t, errs, "History/PeerHead failed %d of %d reads", len(errs), reads.Load())
	fsck(t, b)
}
