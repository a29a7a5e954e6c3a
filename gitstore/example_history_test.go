package gitstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/gitstore"
)

// A file is edited, then deleted; its history still lists it, and Restore
// brings back its first version as a new commit.
func ExampleStore_Restore() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "folder")
	defer os.RemoveAll(dir)
	s, err := gitstore.Open(gitstore.Config{Dir: dir, Create: true})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	notes := filepath.Join(dir, "notes.txt")
	for _, content := range []string{"first draft\n", "second draft\n"} {
		os.WriteFile(notes, []byte(content), 0o644)
		if _, err := s.Scan(ctx); err != nil {
			log.Fatal(err)
		}
	}
	os.Remove(notes)
	if _, err := s.Scan(ctx); err != nil {
		log.Fatal(err)
	}

	history, err := s.History(ctx, "notes.txt", 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range history {
		fmt.Println(c.Action, c.Path)
	}
	first := history[len(history)-1].Commit
	c, err := s.Restore(ctx, "notes.txt", first)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored:", c.Action, c.Path)
	b, _ := os.ReadFile(notes)
	fmt.Print(string(b))
	// Output:
	// delete notes.txt
	// modify notes.txt
	// add notes.txt
	// restored: add notes.txt
	// first draft
}
