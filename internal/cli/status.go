package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peersync/peersync/sync"
)

func (a *app) status(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return UsageError{"status takes no arguments"}
	}
	c, err := a.connect(ctx, "status", readAccess)
	if err != nil {
		return err
	}
	defer c.close()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if !c.daemon {
		fmt.Fprintf(a.stderr, "(the daemon is not running: `%s run` starts it)\n", a.prog.Name)
	}
	writeStatus(a.stdout, st)
	return nil
}

// writeStatus prints a status: the device, then a line per folder and per
// peer, each peer followed by its folders (direction, last known
// revision) and transfers.
func writeStatus(w io.Writer, st sync.Status) {
	fmt.Fprintf(w, "device  %s\nname    %s\n", st.Device, printable(st.Name))
	if st.Addr != "" {
		fmt.Fprintf(w, "listen  %s\n", st.Addr)
	}
	if r := st.Rendezvous; r != nil {
		dev, state := "-", "not registered"
		if !r.Device.IsZero() {
			dev = r.Device.String()
		}
		if !r.Pinned {
			dev += " (unpinned)"
		}
		if r.Registered {
			state = "registered, seen as " + r.Observed
		}
		fmt.Fprintf(w, "rendezvous  %s  %s  %s\n", r.Addr, dev, state)
	}
	for _, f := range st.Folders {
		writeFolder(w, f)
	}
	for _, p := range st.Peers {
		writePeer(w, p)
	}
	if n := len(st.Pending.Devices) + len(st.Pending.Folders); n > 0 {
		fmt.Fprintf(w, "pending %d (devices and folder offers: `pending` lists them)\n", n)
	}
}

func writeFolder(w io.Writer, f sync.FolderStatus) {
	head := "-"
	if !f.Head.IsZero() {
		head = f.Head.String()
	}
	fmt.Fprintf(w, "folder  %s  %s  head %s", printable(f.ID), printable(f.Path), head)
	if f.Label != "" && f.Label != f.ID {
		fmt.Fprintf(w, "  label %q", f.Label)
	}
	if f.Paused {
		fmt.Fprint(w, "  PAUSED")
	} else if f.Stopped != "" {
		fmt.Fprintf(w, "  STOPPED: %s", f.Stopped)
	}
	if f.NotSent > 0 {
		fmt.Fprintf(w, "  %d local changes not sent", f.NotSent)
	}
	if sc := f.Scan; sc != nil {
		fmt.Fprintf(w, "  scanning: %d files, %s", sc.Files, formatBytes(sc.Bytes))
	}
	fmt.Fprintln(w)
}

func writePeer(w io.Writer, p sync.PeerStatus) {
	state := "offline"
	if p.Connected {
		state = "connected " + p.Addr + " " + p.Path
	}
	if p.Paused {
		state = "PAUSED"
	}
	fmt.Fprintf(w, "peer    %s  %s  %s  addrs=%s  folders=%s", orDash(p.Name), p.Device, state,
		strings.Join(p.Addrs, ","), strings.Join(p.Folders, ","))
	if p.Window != "" && p.Window != "open" {
		fmt.Fprintf(w, "  window %s", p.Window)
		if p.Waiting > 0 {
			fmt.Fprintf(w, ", %d changes waiting", p.Waiting)
		}
	}
	fmt.Fprintln(w)
	for _, f := range p.Folders {
		known := "-"
		if h, ok := p.Known[f]; ok && !h.IsZero() {
			known = h.String()
		}
		dir := p.Directions[f]
		if dir == "" {
			dir = sync.DirBoth
		}
		fmt.Fprintf(w, "  known %s %s %s\n", f, known, dir)
	}
	for _, pr := range p.Progress {
		fmt.Fprintf(w, "  %s %s %s\n", pr.Direction, pr.Folder, progressText(pr))
	}
}

// progressText is "1.5MiB of 10MiB (15%) at 512KiB/s, 17s left".
func progressText(p sync.Progress) string {
	s := formatBytes(p.Bytes)
	if p.Total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", formatBytes(p.Total), p.Bytes*100/p.Total)
	}
	if p.Rate > 0 {
		s += " at " + formatRate(int64(p.Rate))
	}
	if p.ETA > 0 {
		s += ", " + p.ETA.Round(time.Second).String() + " left"
	}
	return s
}

// formatBytes prints a size in binary units ("0B" for none).
func formatBytes(n int64) string {
	if n == 0 {
		return "0B"
	}
	return strings.TrimSuffix(formatRate(n), "/s")
}
