// Command quickstart keeps one folder in step between two engines in one
// process: the smallest complete use of the SDK (README, "SDK quick start").
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "quickstart")
	l, err2 := net.ListenPacket("udp", "127.0.0.1:0") // a free port for B, which A dials
	if err = errors.Join(err, err2); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)                       // runs last, after the engines are closed
	addrB, _ := l.LocalAddr().String(), l.Close() // B listens there
	var e [2]*sync.Engine                         // A and B, each with its own state and its own folder "docs"
	for i, listen := range []string{"127.0.0.1:0", addrB} {
		id, _ := crypto.GenerateIdentity(nil) // a new key; nil = crypto/rand
		home, docs := filepath.Join(tmp, "AB"[i:i+1], "state"), filepath.Join(tmp, "AB"[i:i+1], "docs")
		if e[i], err = sync.New(sync.Config{Home: home, Identity: id, Network: sync.NetworkConfig{ListenAddr: listen}}); err != nil {
			return err
		}
		defer e[i].Close() // ends its Run
		if err = errors.Join(os.Mkdir(docs, 0o755), e[i].AddFolder(ctx, sync.FolderConfig{ID: "docs", Path: docs})); err != nil {
			return err
		}
		go e[i].Run(ctx) // connects, watches, syncs until ctx ends or Close
	}
	if err := errors.Join( // each names the other by its DeviceID (its public key); A dials B
		e[0].AddPeer(sync.PeerConfig{Device: e[1].DeviceID(), Addrs: []string{addrB}, Folders: []string{"docs"}}),
		e[1].AddPeer(sync.PeerConfig{Device: e[0].DeviceID(), Folders: []string{"docs"}}),
		os.WriteFile(filepath.Join(tmp, "A", "docs", "hello.txt"), []byte("hello from A\n"), 0o644)); err != nil {
		return err
	}
	defer context.AfterFunc(ctx, func() { e[1].Close() })() // if ctx ends first, it ends the loop below
	for ev := range e[1].Events() {                         // B's events: connections, changes applied, errors
		if data, err := os.ReadFile(filepath.Join(tmp, "B", "docs", "hello.txt")); ev.Kind == sync.EventRemoteApplied && err == nil {
			_, err = fmt.Fprintf(out, "B has hello.txt: %s", data)
			return err
		}
	}
	return ctx.Err()
}
