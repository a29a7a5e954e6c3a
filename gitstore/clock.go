package gitstore

import (
	"container/heap"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Clocks. A conflict goes to the newer commit, and a commit's time is what
// its author's clock said: a device whose clock is ahead would win every
// conflict. Its lead is estimated from the history itself, so that both
// peers of a merge compute the same estimate (they merge the same two heads,
// so they see the same union of histories): a commit whose parent, by
// another author, is more than clockSlack newer than itself proves that the
// parent's author was ahead by at least that much. The largest such lead
// per author, over the newest clockWalkMax commits of the union (in a
// fixed order), is subtracted from that author's commit times when
// conflicts are decided. A lead is found once the history holds a commit
// made on top of the ahead device's work, so at most the first conflict
// after a clock jumps goes to the device that is ahead.
const (
	clockSlack   = time.Minute
	clockWalkMax = 10_000
)

// clockLeadsLocked returns the estimated lead, in seconds, of each author
// e-mail's clock found in the union of the histories of a and b.
func (s *Store) clockLeadsLocked(a, b *object.Commit) (map[string]int64, error) {
	leads := map[string]int64{}
	q := &commitQueue{}
	met := map[plumbing.Hash]bool{}
	for _, c := range []*object.Commit{a, b} {
		if !met[c.Hash] {
			met[c.Hash] = true
			heap.Push(q, c)
		}
	}
	for n := 0; q.Len() > 0 && n < clockWalkMax; n++ {
		c := heap.Pop(q).(*object.Commit)
		for _, ph := range c.ParentHashes {
			p, err := s.commitLocked(ph)
			if err != nil {
				return nil, err
			}
			if lead := p.Committer.When.Unix() - c.Committer.When.Unix(); p.Author.Email != c.Author.Email &&
				lead > int64(clockSlack/time.Second) && lead > leads[p.Author.Email] {
				leads[p.Author.Email] = lead
			}
			if !met[ph] {
				met[ph] = true
				heap.Push(q, p)
			}
		}
	}
	return leads, nil
}

// newerWithLeads is newerCommit with each commit's time corrected by its
// author's estimated lead.
func newerWithLeads(a, b *object.Commit, leads map[string]int64) bool {
	ta := a.Committer.When.Unix() - leads[a.Author.Email]
	tb := b.Committer.When.Unix() - leads[b.Author.Email]
	if ta != tb {
		return ta > tb
	}
	return tieBreak(a, b)
}

// tieBreak orders two commits of the same (corrected) time: the larger
// author e-mail (the DeviceID), then the larger hash.
func tieBreak(a, b *object.Commit) bool {
	if a.Author.Email != b.Author.Email {
		return a.Author.Email > b.Author.Email
	}
	return a.Hash.String() > b.Hash.String()
}
