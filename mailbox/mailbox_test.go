package mailbox_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/deviceid"
	"github.com/peersync/peersync/mailbox"
)

// clock is a hand-moved clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func dev(b byte) deviceid.ID {
	var d deviceid.ID
	d[0] = b
	return d
}

func put(t *testing.T, s *mailbox.Store, from, to deviceid.ID, size int, replaces ...string) (mailbox.Item, []mailbox.Item) {
	t.Helper()
	it, dropped, err := s.Put(from, to, bytes.NewReader(bytes.Repeat([]byte{'x'}, size)), int64(size), replaces)
	require.NoError(t, err)
	return it, dropped
}

func ids(items []mailbox.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

// TestQuotaDropsOldestFirst: a deposit that does not fit pushes out the
// recipient's oldest ones (from any sender), other recipients' boxes are
// untouched, and one larger than the quota is refused before anything is
// stored.
func TestQuotaDropsOldestFirst(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	s, err := mailbox.Open(mailbox.Config{Dir: t.TempDir(), Limits: mailbox.Limits{Quota: 100, MaxItems: 3}, Now: c.now})
	require.NoError(t, err)
	a, b, other := dev(1), dev(2), dev(3)
	first, _ := put(t, s, a, b, 40)
	c.t = c.t.Add(time.Second)
	second, _ := put(t, s, other, b, 40)
	c.t = c.t.Add(time.Second)
	elsewhere, _ := put(t, s, a, other, 90)
	c.t = c.t.Add(time.Second)
	third, dropped := put(t, s, a, b, 30)
	assert.Equal(t, []string{first.ID}, ids(dropped), "40+40+30 > 100: the oldest goes")
	assert.Equal(t, []string{second.ID, third.ID}, ids(s.List(b)))
	assert.Equal(t, []string{elsewhere.ID}, ids(s.List(other)), "another recipient's box is its own")
	assert.EqualValues(t, 40+30+90, s.Bytes())

	_, _, err = s.Put(a, b, strings.NewReader(strings.Repeat("y", 101)), 101, nil)
	require.ErrorIs(t, err, mailbox.ErrTooLarge)
	assert.Equal(t, []string{second.ID, third.ID}, ids(s.List(b)), "a refused deposit drops nothing")

	// The item count: three small ones, the fourth pushes the oldest out.
	c.t = c.t.Add(time.Second)
	fourth, _ := put(t, s, a, b, 1)
	c.t = c.t.Add(time.Second)
	_, dropped = put(t, s, a, b, 1)
	assert.Equal(t, []string{second.ID}, ids(dropped))
	assert.Contains(t, ids(s.List(b)), fourth.ID)
	_, err = os.Stat(filepath.Join(s.Dir(), b.String()))
	require.NoError(t, err)
}

// TestExpiry: deposits older than the expiry are neither listed nor kept.
func TestExpiry(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	dir := t.TempDir()
	s, err := mailbox.Open(mailbox.Config{Dir: dir, Limits: mailbox.Limits{Expiry: time.Hour}, Now: c.now})
	require.NoError(t, err)
	a, b := dev(1), dev(2)
	old, _ := put(t, s, a, b, 10)
	c.t = c.t.Add(30 * time.Minute)
	young, _ := put(t, s, a, b, 20)
	c.t = c.t.Add(31 * time.Minute)
	assert.Equal(t, []string{young.ID}, ids(s.List(b)), "past its expiry: not listed")
	assert.Equal(t, []string{old.ID}, ids(s.Expire()))
	assert.EqualValues(t, 20, s.Bytes())
	files, err := os.ReadDir(filepath.Join(dir, b.String()))
	require.NoError(t, err)
	assert.Len(t, files, 1, "the expired file is gone from disk")
}

// TestReplacesOnlyOwnDeposits: a sender's new deposit removes the earlier
// ones it names, never another sender's, and only once it is stored.
func TestReplacesOnlyOwnDeposits(t *testing.T) {
	s, err := mailbox.Open(mailbox.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	a, b, c := dev(1), dev(2), dev(3)
	fromA, _ := put(t, s, a, b, 10)
	fromC, _ := put(t, s, c, b, 10)

	_, _, err = s.Put(a, b, strings.NewReader("short"), 10, []string{fromA.ID})
	require.ErrorIs(t, err, mailbox.ErrShort)
	assert.Equal(t, []string{fromA.ID, fromC.ID}, ids(s.List(b)), "a failed deposit replaces nothing")

	newer, _ := put(t, s, a, b, 10, fromA.ID, fromC.ID)
	assert.Equal(t, []string{fromC.ID, newer.ID}, ids(s.List(b)), "a's own earlier deposit goes, c's stays")
	assert.EqualValues(t, 20, s.Bytes())
}

// TestReopenAndRead: the index survives a restart, the bytes read back are
// the bytes put, Delete is idempotent, and crash leftovers are cleaned.
func TestReopenAndRead(t *testing.T) {
	dir := t.TempDir()
	s, err := mailbox.Open(mailbox.Config{Dir: dir})
	require.NoError(t, err)
	a, b := dev(1), dev(2)
	it, _, err := s.Put(a, b, strings.NewReader("sealed bytes"), 12, nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("half"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, b.String(), "stray"), []byte("?"), 0o600))

	s2, err := mailbox.Open(mailbox.Config{Dir: dir})
	require.NoError(t, err)
	got := s2.List(b)
	require.Len(t, got, 1)
	assert.Equal(t, it.ID, got[0].ID)
	assert.Equal(t, a, got[0].From)
	assert.Equal(t, it.At.UnixNano(), got[0].At.UnixNano())
	assert.EqualValues(t, 12, s2.Bytes(), "a stray file is not counted")
	_, err = os.Stat(filepath.Join(dir, "tmp", "put-123"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	f, _, err := s2.Read(b, it.ID)
	require.NoError(t, err)
	require.NoError(t, s2.Delete(b, it.ID))
	content, err := io.ReadAll(f) // an open deposit stays readable
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Equal(t, "sealed bytes", string(content))
	require.NoError(t, s2.Delete(b, it.ID))
	_, _, err = s2.Read(b, it.ID)
	assert.ErrorIs(t, err, mailbox.ErrNotFound)
	assert.Zero(t, s2.Bytes())
}

// TestReceipts: a sender learns which of its deposits were taken, and
// whether applied, once; deletions that are not takings leave no receipt.
func TestReceipts(t *testing.T) {
	s, err := mailbox.Open(mailbox.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	a, b, c := dev(1), dev(2), dev(3)
	one, _ := put(t, s, a, b, 5)
	two, _ := put(t, s, a, c, 5)
	three, _ := put(t, s, a, b, 5)
	fromC, _ := put(t, s, c, b, 5)
	require.NoError(t, s.Take(b, one.ID, true))
	require.NoError(t, s.Take(c, two.ID, false))
	require.NoError(t, s.Delete(b, three.ID))
	require.NoError(t, s.Take(b, fromC.ID, true))
	require.NoError(t, s.Take(b, one.ID, true), "taken twice: no error, no second receipt")
	assert.Equal(t, []mailbox.Receipt{{ID: one.ID, To: b, Applied: true}, {ID: two.ID, To: c, Applied: false}}, s.Receipts(a))
	assert.Empty(t, s.Receipts(a), "each receipt is handed over once")
	assert.Equal(t, []mailbox.Receipt{{ID: fromC.ID, To: b, Applied: true}}, s.Receipts(c))
	assert.Empty(t, s.HeldFrom(a))
	four, _ := put(t, s, a, c, 5)
	assert.Equal(t, []string{four.ID}, s.HeldFrom(a))
	assert.EqualValues(t, 5, s.Bytes(), "only the last one is held")
}
