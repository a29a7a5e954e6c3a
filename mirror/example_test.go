package mirror_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/peersync/peersync/mirror"
	"github.com/peersync/peersync/mirror/mirrortest"
)

// Example mirrors a folder to an SFTP target, changes the folder and
// mirrors it again. The target here is an SFTP server in this process on a
// loopback port, which Config.Dial connects to whatever the URL's host;
// with a real host, leave Dial nil.
func Example() {
	base, err := os.MkdirTemp("", "mirror-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)
	folder, target, state := filepath.Join(base, "Notes"), filepath.Join(base, "www"), filepath.Join(base, "state")
	_ = os.MkdirAll(filepath.Join(folder, "2026"), 0o755)
	_ = os.MkdirAll(filepath.Join(folder, ".peersync"), 0o755) // the history: never mirrored
	_ = os.WriteFile(filepath.Join(folder, "todo.txt"), []byte("buy milk\n"), 0o644)
	_ = os.WriteFile(filepath.Join(folder, "2026", "trip.txt"), []byte("Lisbon\n"), 0o644)

	srv, err := mirrortest.NewSFTPServer("demo", "s3cret")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	m, err := mirror.New(mirror.Config{
		URL:      "sftp://demo:s3cret@files.example.com" + target,
		StateDir: state,
		Dial:     srv.Dial,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println("password shown:", strings.Contains(m.String(), "s3cret"))

	ctx := context.Background()
	res, err := m.Sync(ctx, folder, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("first sync: %d uploaded, %d deleted\n", res.Uploaded, res.Deleted)

	_ = os.WriteFile(filepath.Join(folder, "todo.txt"), []byte("buy milk\ncall Ana\n"), 0o644)
	_ = os.Remove(filepath.Join(folder, "2026", "trip.txt"))
	res, err = m.Sync(ctx, folder, func(p mirror.Progress) {
		if p.FilesDone == p.FilesTotal {
			fmt.Printf("progress: %d/%d files, %d/%d bytes\n", p.FilesDone, p.FilesTotal, p.BytesDone, p.BytesTotal)
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("second sync: %d uploaded, %d deleted, %d unchanged\n", res.Uploaded, res.Deleted, res.Unchanged)

	todo, _ := os.ReadFile(filepath.Join(target, "todo.txt"))
	_, tripErr := os.Stat(filepath.Join(target, "2026"))
	_, histErr := os.Stat(filepath.Join(target, ".peersync"))
	fmt.Printf("target todo.txt: %q\n", todo)
	fmt.Println("emptied directory removed:", os.IsNotExist(tripErr))
	fmt.Println("history mirrored:", histErr == nil)
	// Output:
	// password shown: false
	// first sync: 2 uploaded, 0 deleted
	// progress: 2/2 files, 18/18 bytes
	// second sync: 1 uploaded, 1 deleted, 0 unchanged
	// target todo.txt: "buy milk\ncall Ana\n"
	// emptied directory removed: true
	// history mirrored: false
}
