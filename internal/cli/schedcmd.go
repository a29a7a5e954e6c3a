package cli

import (
	"context"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

const scheduleUsage = "usage: schedule | schedule set [--days mon,tue,...|all] --from HH:MM --to HH:MM | schedule set --always | " +
	"schedule set --peer DEVICEID (--from HH:MM --to HH:MM [--days ...] | --global)"

// schedule shows the global sync window and every peer's row, or sets one.
func (a *app) schedule(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] != "set" {
		return UsageError{scheduleUsage}
	}
	if len(args) == 0 {
		c, err := a.connect(ctx, "schedule", readAccess)
		if err != nil {
			return err
		}
		defer c.close()
		s, err := c.Schedule(ctx)
		if err != nil {
			return err
		}
		a.writeSchedule(s)
		return nil
	}
	fs := flag.NewFlagSet("schedule set", flag.ContinueOnError)
	days := fs.String("days", "", "days the window opens on: mon,tue,... or all (default all)")
	from := fs.String("from", "", "HH:MM, local time, the window opens")
	to := fs.String("to", "", "HH:MM, local time, the window closes (before --from: the next day)")
	always := fs.Bool("always", false, "no global window: sync at any time")
	global := fs.Bool("global", false, "with --peer: the peer follows the global window")
	peerFlag := fs.String("peer", "", "set this peer's window instead of the global one")
	if pos, err := parse(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return UsageError{scheduleUsage}
	}
	peer, err := optionalPeer(*peerFlag)
	if err != nil {
		return err
	}
	clear := *always || *global
	switch {
	case *always && *peerFlag != "", *global && *peerFlag == "":
		return UsageError{"--always is for the global window, --global for a peer's (with --peer)"}
	case clear && (*from != "" || *to != "" || *days != ""):
		return UsageError{"--always and --global take no --from, --to or --days"}
	case !clear && (*from == "" || *to == ""):
		return UsageError{scheduleUsage}
	}
	var w *sync.Window
	if !clear {
		win, err := sync.ParseWindow(*days, *from, *to)
		if err != nil {
			return UsageError{err.Error()}
		}
		w = &win
	}
	c, err := a.connect(ctx, "schedule set", configAccess)
	if err != nil {
		return err
	}
	defer c.close()
	s, err := c.SetSchedule(ctx, peer, w)
	if err != nil {
		return err
	}
	a.writeSchedule(s)
	return nil
}

// writeSchedule prints the global window and one row per peer:
//
//	global  mon,tue 22:00-06:00
//	peer    NAME  DEVICEID  global|WINDOW  STATE
func (a *app) writeSchedule(s httpapi.Schedule) {
	fmt.Fprintf(a.stdout, "global  %s\n", windowText(s.Window, "always"))
	for _, p := range s.Peers {
		fmt.Fprintf(a.stdout, "peer    %s  %s  %s  %s\n", orDash(p.Name), p.Device, windowText(p.Window, "global"), printable(p.State))
	}
}

func windowText(w *sync.Window, none string) string {
	if w == nil {
		return none
	}
	return w.String()
}

// syncNow runs one exchange now, outside the sync windows.
func (a *app) syncNow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sync-now", flag.ContinueOnError)
	peerFlag := fs.String("peer", "", "only with this peer")
	folder := fs.String("folder", "", "only this folder")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return UsageError{"usage: sync-now [--peer DEVICEID] [--folder ID]"}
	}
	peer, err := optionalPeer(*peerFlag)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, "sync-now", readAccess)
	if err != nil {
		return err
	}
	defer c.close()
	if !c.daemon {
		return fmt.Errorf("sync-now: the daemon is not running (`%s run` starts it; it syncs at once within the window)", a.prog.Name)
	}
	if err := c.SyncNow(ctx, peer, *folder); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "exchange started")
	return nil
}

// limit shows the bandwidth limits, or sets the global ones or a peer's.
func (a *app) limit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("limit", flag.ContinueOnError)
	peerFlag := fs.String("peer", "", "this peer's limits instead of the global ones")
	up := fs.String("up", "", "upload RATE (like 500KiB, 10MiB, 2MB; per second; 0 = none)")
	down := fs.String("down", "", "download RATE")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return UsageError{"usage: limit [--peer DEVICEID] [--up RATE] [--down RATE]"}
	}
	peer, err := optionalPeer(*peerFlag)
	if err != nil {
		return err
	}
	acc := readAccess
	if *up != "" || *down != "" {
		acc = configAccess
	}
	c, err := a.connect(ctx, "limit", acc)
	if err != nil {
		return err
	}
	defer c.close()
	lim, err := c.Limits(ctx)
	if err != nil {
		return err
	}
	if acc == configAccess {
		cur := sync.RateLimit{Up: lim.Up, Down: lim.Down}
		if !peer.IsZero() {
			cur = sync.RateLimit{}
			for _, p := range lim.Peers {
				if p.Device == peer {
					cur = sync.RateLimit{Up: p.Up, Down: p.Down}
				}
			}
		}
		for _, r := range []struct {
			text string
			to   *int64
		}{{*up, &cur.Up}, {*down, &cur.Down}} {
			if r.text == "" {
				continue
			}
			if *r.to, err = parseRate(r.text); err != nil {
				return UsageError{err.Error()}
			}
		}
		if lim, err = c.SetLimits(ctx, peer, cur); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "global  up %s  down %s\n", formatRate(lim.Up), formatRate(lim.Down))
	for _, p := range lim.Peers {
		fmt.Fprintf(a.stdout, "peer    %s  %s  up %s  down %s\n", orDash(p.Name), p.Device, formatRate(p.Up), formatRate(p.Down))
	}
	return nil
}

// rateUnits are the suffixes parseRate knows, longest first.
var rateUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

// parseRate reads a rate in bytes per second: a number with an optional
// unit (B, KB, MB, GB: powers of 1000; KiB, MiB, GiB and K, M, G: of
// 1024) and an optional "/s"; 0 means no limit.
func parseRate(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/s")
	mult := int64(1)
	for _, u := range rateUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("rate %q: want a number with a unit, like 500KiB, 10MiB or 0 (no limit)", s)
	}
	return int64(n * float64(mult)), nil
}

// formatRate prints bytes per second in binary units, to two decimals at
// most; 0 is "none".
func formatRate(n int64) string {
	if n == 0 {
		return "none"
	}
	v, unit := float64(n), "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + unit + "/s"
}

// optionalPeer parses a --peer flag: "" is the zero DeviceID (all peers,
// or the global setting).
func optionalPeer(s string) (crypto.DeviceID, error) {
	if s == "" {
		return crypto.DeviceID{}, nil
	}
	return crypto.ParsePeer(s)
}
