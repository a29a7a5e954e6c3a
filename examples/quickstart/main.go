// Command quickstart keeps one folder in step between two engines in one
// process: the smallest complete use of the SDK (README, "SDK quick start").
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// device starts an engine listening on a free loopback port, sharing a new
// folder "docs"; stop ends Run, closes the engine and removes its files.
func device(ctx context.Context) (e *sync.Engine, dir, addr string, stop func(), err error) {
	tmp, _ := os.MkdirTemp("", "quickstart")
	home, dir, addr := filepath.Join(tmp, "state"), filepath.Join(tmp, "docs"), freeAddr()
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	if err == nil {
		e, err = sync.New(sync.Config{Home: home, Identity: id, ListenAddr: addr})
	}
	if err == nil && os.Mkdir(dir, 0o755) == nil {
		err = e.AddFolder(ctx, sync.FolderConfig{ID: "docs", Path: dir})
	}
	if err != nil {
		return nil, "", "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return e, dir, addr, func() { cancel(); <-done; e.Close(); os.RemoveAll(tmp) }, nil
}

func run(ctx context.Context, out io.Writer) error {
	a, dirA, _, stopA, err := device(ctx)
	if err != nil {
		return err
	}
	defer stopA()
	b, dirB, addrB, stopB, err := device(ctx)
	if err != nil {
		return err
	}
	defer stopB()
	// Each names the other by its DeviceID (its public key); A dials B.
	if err := errors.Join(
		a.AddPeer(sync.PeerConfig{Device: b.DeviceID(), Addrs: []string{addrB}, Folders: []string{"docs"}}),
		b.AddPeer(sync.PeerConfig{Device: a.DeviceID(), Folders: []string{"docs"}}),
		os.WriteFile(filepath.Join(dirA, "hello.txt"), []byte("hello from A\n"), 0o644)); err != nil {
		return err
	}
	for { // B's events: connections, changes applied, errors
		select {
		case ev := <-b.Events():
			data, err := os.ReadFile(filepath.Join(dirB, "hello.txt"))
			if ev.Kind == sync.EventRemoteApplied && err == nil {
				_, err = fmt.Fprintf(out, "B has hello.txt: %s", data)
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// freeAddr returns a loopback address whose UDP port is free now.
func freeAddr() string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer c.Close()
	return c.LocalAddr().String()
}
