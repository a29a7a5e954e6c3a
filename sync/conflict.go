package sync

import (
	"context"
	"fmt"
	"strings"

	"github.com/peersync/peersync/gitstore"
)

// Conflicts lists folder's conflict copies (see gitstore's "Merge rule"):
// each copy with the file it is a copy of, and who made each side and
// when. Change.From names the peer that delivered a side ("" = made here).
func (e *Engine) Conflicts(ctx context.Context, folder string) ([]gitstore.Conflict, error) {
	st, err := e.store(folder)
	if err != nil {
		return nil, err
	}
	cs, err := st.Conflicts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sync: conflicts of %q: %w", folder, err)
	}
	e.nameCopyMakers(cs)
	return cs, nil
}

// nameCopyMakers gives a name to a copy's maker known only by the first
// characters of its DeviceID (from the copy's name, see
// gitstore.ConflictSide): this device's or a peer's whose ID starts so,
// as "name <DeviceID@peersync>".
func (e *Engine) nameCopyMakers(cs []gitstore.Conflict) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range cs {
		ch := &cs[i].CopySide.Change
		dev, _, _ := strings.Cut(ch.Author, " ")
		if !ch.Commit.IsZero() || len(dev) < 7 {
			continue
		}
		if me := e.DeviceID(); strings.HasPrefix(me.String(), dev) {
			ch.Author = e.nameLocked() + " <" + me.String() + "@peersync>"
			continue
		}
		for _, p := range e.conf.Peers {
			if strings.HasPrefix(p.Device.String(), dev) {
				ch.Author = p.Name + " <" + p.Device.String() + "@peersync>"
				break
			}
		}
	}
}

// ResolveConflict ends the conflict of copy in folder by keeping one side
// (gitstore.KeepCopy: the copy's content goes to the original path;
// gitstore.KeepOriginal: the original stays) and deleting the copy. Each
// step is an ordinary commit, announced to the peers like any local edit,
// so the resolution reaches every device. It returns the commits made.
func (e *Engine) ResolveConflict(ctx context.Context, folder, copy string, keep gitstore.Keep) ([]gitstore.Change, error) {
	if err := e.owner(); err != nil {
		return nil, err
	}
	st, err := e.store(folder)
	if err != nil {
		return nil, err
	}
	out, err := st.ResolveConflict(ctx, copy, keep)
	if err != nil {
		return nil, fmt.Errorf("sync: resolve %q in %q: %w", copy, folder, err)
	}
	if len(out) > 0 {
		e.emit(Event{Kind: EventLocalChanges, Folder: folder, Changes: out, Head: out[len(out)-1].Commit})
		e.announce(folder)
	}
	return out, nil
}
