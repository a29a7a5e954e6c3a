package gitstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/gitstore"
)

// Two devices share a folder: the laptop commits a new file, sends a bundle,
// and the desktop applies it.
func Example() {
	ctx := context.Background()
	laptopDir, _ := os.MkdirTemp("", "laptop")
	desktopDir, _ := os.MkdirTemp("", "desktop")
	defer os.RemoveAll(laptopDir)
	defer os.RemoveAll(desktopDir)

	laptop, err := gitstore.Open(gitstore.Config{Dir: laptopDir, Create: true, AuthorName: "laptop", AuthorEmail: "LAPTOP@peersync"})
	if err != nil {
		log.Fatal(err)
	}
	defer laptop.Close()
	desktop, err := gitstore.Open(gitstore.Config{Dir: desktopDir, Create: true, AuthorName: "desktop", AuthorEmail: "DESKTOP@peersync"})
	if err != nil {
		log.Fatal(err)
	}
	defer desktop.Close()

	os.WriteFile(filepath.Join(laptopDir, "notes.txt"), []byte("buy milk\n"), 0o644)
	changes, err := laptop.Scan(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range changes {
		fmt.Println(c.Action, c.Path)
	}

	// The desktop has nothing yet, so since is empty.
	var bundle bytes.Buffer
	if _, err := laptop.WriteBundle(ctx, &bundle, nil); err != nil {
		log.Fatal(err)
	}
	res, err := desktop.ApplyBundle(ctx, &bundle, "LAPTOP")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Kind, res.Changed)
	b, _ := os.ReadFile(filepath.Join(desktopDir, "notes.txt"))
	fmt.Print(string(b))
	// Output:
	// add notes.txt
	// fast-forward [notes.txt]
	// buy milk
}
