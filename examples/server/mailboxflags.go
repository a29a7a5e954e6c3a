package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/mailbox"
	"github.com/peersync/peersync/sync"
)

// mailboxFlags are `server run`'s flags for the blind mailbox: devices
// whose peer is offline leave bundles sealed to it here (see sync's
// package doc, Mailbox).
type mailboxFlags struct {
	off    bool
	quota  byteSize
	items  int
	expiry time.Duration
}

func (f *mailboxFlags) declare(fs *flag.FlagSet) {
	f.quota = mailbox.DefaultQuota
	fs.BoolVar(&f.off, "no-mailbox", false, "keep no mailbox: devices cannot leave bundles here for their offline peers")
	fs.Var(&f.quota, "mailbox-quota", "bytes of sealed bundles kept per recipient, like 256MiB or 1G (KB, MB, GB: powers of 1000); the oldest go first")
	fs.IntVar(&f.items, "mailbox-max", mailbox.DefaultMaxItems, "sealed bundles kept per recipient; the oldest go first")
	fs.DurationVar(&f.expiry, "mailbox-expiry", mailbox.DefaultExpiry, "how long a sealed bundle waits for its recipient")
}

// config returns the engine's mailbox configuration, or why the flags are
// wrong.
func (f *mailboxFlags) config() (sync.MailboxConfig, error) {
	if f.quota <= 0 || f.items <= 0 || f.expiry <= 0 {
		return sync.MailboxConfig{}, fmt.Errorf("--mailbox-quota, --mailbox-max and --mailbox-expiry must be positive (or --no-mailbox)")
	}
	return sync.MailboxConfig{Off: f.off, Limits: mailbox.Limits{Quota: int64(f.quota), MaxItems: f.items, Expiry: f.expiry}}, nil
}

// byteSize is a flag value in bytes, in the CLI's units (cli.ParseSize).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	n, err := cli.ParseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}
