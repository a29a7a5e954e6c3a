//go:build unix

package gitstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"syscall"

	"github.com/peersync/peersync/gitstore"
)

// A file the scan cannot sync (here a FIFO) is skipped and listed by
// Skipped; the rest of the folder is committed.
func ExampleStore_Skipped() {
	dir, _ := os.MkdirTemp("", "folder")
	defer os.RemoveAll(dir)
	s, err := gitstore.Open(gitstore.Config{Dir: dir, Create: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("buy milk\n"), 0o644)
	syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644)

	changes, err := s.Scan(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range changes {
		fmt.Println(c.Action, c.Path)
	}
	for _, sp := range s.Skipped() {
		fmt.Println("not synced:", sp)
	}
	// Output:
	// add notes.txt
	// not synced: "pipe": named pipe (FIFO): not a regular file, so not synced
}
