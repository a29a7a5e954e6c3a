package sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window is a sync window: the hours of the day, and optionally the days
// of the week, during which bundles go to and come from a peer (see the
// package doc, Schedules). Its JSON form is
//
//	{"days":["mon","tue"],"from":"22:00","to":"06:00"}
//
// The zero Window (every day, 00:00 to 00:00) is always open; a nil
// *Window in the configuration means "always" too.
type Window struct {
	// Days are the days on which the window opens; empty means every
	// day. A window that spans midnight belongs to the day it opens on:
	// {"days":["fri"],"from":"22:00","to":"06:00"} is Friday 22:00 to
	// Saturday 06:00.
	Days []time.Weekday
	// From and To are "HH:MM" (24-hour) in the zone of the time asked
	// about, which for the engine's clock is the OS zone (TZ). To before
	// From spans midnight; To equal to From is 24 hours.
	From, To string
}

// dayNames are the JSON and command-line names of the weekdays, indexed by
// time.Weekday.
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDays parses a comma-separated list of weekdays ("mon,tue,sat";
// three-letter or full English names, any case). "" and "all" mean every
// day (nil).
func ParseDays(s string) ([]time.Weekday, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "all") {
		return nil, nil
	}
	var days []time.Weekday
	for _, name := range strings.Split(s, ",") {
		d, err := parseDay(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	return days, nil
}

func parseDay(name string) (time.Weekday, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for i, short := range dayNames {
		full := strings.ToLower(time.Weekday(i).String())
		if n == short || n == full {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("sync: unknown day %q: use mon, tue, wed, thu, fri, sat or sun", name)
}

// ParseWindow builds a Window from the command line's words: days as
// ParseDays takes them, from and to as "HH:MM".
func ParseWindow(days, from, to string) (Window, error) {
	d, err := ParseDays(days)
	if err != nil {
		return Window{}, err
	}
	w := Window{Days: d, From: strings.TrimSpace(from), To: strings.TrimSpace(to)}
	return w, w.Validate()
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, error) {
	digit := func(i int) int { return int(s[i] - '0') }
	if len(s) != 5 || s[2] != ':' || strings.IndexFunc(s[:2]+s[3:], func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("sync: time %q: want HH:MM", s)
	}
	h, m := digit(0)*10+digit(1), digit(3)*10+digit(4)
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("sync: time %q: want HH:MM between 00:00 and 23:59", s)
	}
	return h*60 + m, nil
}

// Validate reports whether w is well-formed: From and To are "HH:MM" and
// every day is a weekday.
func (w Window) Validate() error {
	for _, d := range w.Days {
		if d < time.Sunday || d > time.Saturday {
			return fmt.Errorf("sync: window: day %d is not a weekday", d)
		}
	}
	if _, err := parseClock(w.from()); err != nil {
		return fmt.Errorf("sync: window from: %w", err)
	}
	if _, err := parseClock(w.to()); err != nil {
		return fmt.Errorf("sync: window to: %w", err)
	}
	return nil
}

// from and to default the zero Window's empty times to midnight.
func (w Window) from() string { return orMidnight(w.From) }
func (w Window) to() string   { return orMidnight(w.To) }

func orMidnight(s string) string {
	if s == "" {
		return "00:00"
	}
	return s
}

// String renders w as "mon,tue 22:00-06:00" ("every day 22:00-06:00").
func (w Window) String() string {
	days := "every day"
	if len(w.Days) > 0 {
		names := make([]string, len(w.Days))
		for i, d := range w.Days {
			names[i] = dayName(d)
		}
		days = strings.Join(names, ",")
	}
	return days + " " + w.from() + "-" + w.to()
}

func dayName(d time.Weekday) string {
	if d >= time.Sunday && d <= time.Saturday {
		return dayNames[d]
	}
	return fmt.Sprint(int(d))
}

// windowJSON is Window's JSON shape.
type windowJSON struct {
	Days []string `json:"days,omitempty"`
	From string   `json:"from"`
	To   string   `json:"to"`
}

// MarshalJSON encodes w as {"days":["mon"],"from":"22:00","to":"06:00"}.
func (w Window) MarshalJSON() ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	j := windowJSON{From: w.from(), To: w.to()}
	for _, d := range w.Days {
		j.Days = append(j.Days, dayName(d))
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes and validates a window; a malformed one is an
// error (so a hand-edited config.json with "25:00" is refused, not read
// as "always").
func (w *Window) UnmarshalJSON(b []byte) error {
	var j windowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("sync: window: %w", err)
	}
	out := Window{From: j.From, To: j.To}
	for _, name := range j.Days {
		d, err := parseDay(name)
		if err != nil {
			return err
		}
		if !slices.Contains(out.Days, d) {
			out.Days = append(out.Days, d)
		}
	}
	if out.From == "" || out.To == "" {
		return errors.New(`sync: window: "from" and "to" are required (HH:MM)`)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*w = out
	return nil
}

// clone returns a deep copy of w (nil stays nil).
func (w *Window) clone() *Window {
	if w == nil {
		return nil
	}
	c := *w
	c.Days = slices.Clone(w.Days)
	return &c
}

// opensOn reports whether the window opens on weekday d.
func (w Window) opensOn(d time.Weekday) bool {
	return len(w.Days) == 0 || slices.Contains(w.Days, d)
}

// span returns the opening and closing instants of the window that opens
// on the calendar day (y, m, d) in loc, and whether it opens that day.
// Wall-clock times are placed with time.Date, so across a DST change the
// window keeps its wall-clock hours (and lasts an hour less or more).
func (w Window) span(y int, m time.Month, d int, loc *time.Location) (start, end time.Time, ok bool) {
	if !w.opensOn(time.Date(y, m, d, 12, 0, 0, 0, loc).Weekday()) {
		return time.Time{}, time.Time{}, false
	}
	from, err1 := parseClock(w.from())
	to, err2 := parseClock(w.to())
	if err1 != nil || err2 != nil {
		return time.Time{}, time.Time{}, false
	}
	endDay := d
	if to <= from {
		endDay++ // spans midnight (equal: 24 hours)
	}
	start = time.Date(y, m, d, from/60, from%60, 0, 0, loc)
	end = time.Date(y, m, endDay, to/60, to%60, 0, 0, loc)
	return start, end, true
}

// Open reports whether the window is open at t, read in t's location
// (the engine's clock gives local time: the OS zone, TZ). The opening
// minute is inside the window, the closing minute outside. A malformed
// window is never open.
func (w Window) Open(t time.Time) bool {
	y, m, d := t.Date()
	// A window lasts at most 24 hours, so only the windows opening
	// yesterday and today can hold t.
	for delta := -1; delta <= 0; delta++ {
		if start, end, ok := w.span(y, m, d+delta, t.Location()); ok && !t.Before(start) && t.Before(end) {
			return true
		}
	}
	return false
}

// Next returns the first instant after t at which the window opens or
// closes (Open(Next(t)) != Open(t)), or the zero Time if it never
// changes (open every day around the clock, or malformed).
func (w Window) Next(t time.Time) time.Time {
	y, m, d := t.Date()
	var edges []time.Time
	for delta := -1; delta <= 8; delta++ {
		if start, end, ok := w.span(y, m, d+delta, t.Location()); ok {
			edges = append(edges, start, end)
		}
	}
	slices.SortFunc(edges, func(a, b time.Time) int { return a.Compare(b) })
	now := w.Open(t)
	for _, e := range edges {
		if e.After(t) && w.Open(e) != now {
			return e
		}
	}
	return time.Time{}
}
