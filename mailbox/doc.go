// Package mailbox is the blind mailbox of a hosted server: it keeps
// deposits (opaque byte streams, in peersync sealed bundles that only the
// recipient can open) addressed to one device by another, until the
// recipient picks them up and acknowledges them, or they expire, or newer
// ones push them out.
//
// The store never reads what it holds. What it knows of a deposit is what
// its Item says: an ID it made up, the sending and receiving DeviceIDs, the
// size and when it arrived. That is all the server's operator can learn
// from it too. Checking that a deposit is a sealed stream, and who may
// deposit for whom, is the caller's business (package sync does both).
//
//	s, err := mailbox.Open(mailbox.Config{Dir: filepath.Join(home, "mailbox")})
//	it, dropped, err := s.Put(from, to, r, size, nil) // reads exactly size bytes of r
//	for _, it := range s.List(to) {                  // oldest first
//		f, _, err := s.Read(to, it.ID)
//		… hand f over, then, once the recipient says it has it:
//		err = s.Take(to, it.ID, applied)
//	}
//	for _, r := range s.Receipts(from) { … } // what became of from's deposits
//
// # Limits
//
// Each recipient has a quota of bytes (Limits.Quota, default 256 MiB) and
// of deposits (Limits.MaxItems, default 256). A deposit that does not fit
// pushes out the oldest deposits of its recipient, from any sender, until
// it fits; one larger than the whole quota is refused (ErrTooLarge) before
// a byte is stored. Deposits older than Limits.Expiry (default 30 days)
// are dropped by Expire and are never listed. A sender may name earlier
// deposits of its own that the new one replaces (Put's replaces): they go
// once the new one is safely stored, never before.
//
// # Receipts
//
// When a recipient takes a deposit (Take), its sender gets a receipt:
// which deposit, to whom, and whether the recipient applied or refused
// it, handed over once by Receipts. A sender that learns its bundle was
// applied can make the next one start from there. Receipts live in
// memory only, at most 256 per sender.
//
// # On disk
//
// One directory per recipient, named by its DeviceID, one file per
// deposit, named <arrival, Unix nanoseconds>.<sender DeviceID>.<ID>: the
// name is the whole index, so a deposit is on disk entirely or not at all.
// A deposit is written to tmp/ first, synced, then renamed into place
// (crash leftovers in tmp/ are removed by Open). Files are 0600,
// directories 0700.
package mailbox
