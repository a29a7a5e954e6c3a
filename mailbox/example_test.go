package mailbox_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peersync/peersync/deviceid"
	"github.com/peersync/peersync/mailbox"
)

// A deposit from one device to another, picked up and acknowledged.
func Example() {
	dir, _ := os.MkdirTemp("", "mailbox")
	defer os.RemoveAll(dir)
	s, err := mailbox.Open(mailbox.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	var laptop, desktop deviceid.ID // in real life: the devices' IDs
	laptop[0], desktop[0] = 1, 2

	sealed := "age-encryption.org/v1\n…" // what the store holds, it never reads
	it, _, err := s.Put(laptop, desktop, strings.NewReader(sealed), int64(len(sealed)), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("held:", s.Bytes(), "bytes")

	for _, w := range s.List(desktop) {
		f, _, _ := s.Read(desktop, w.ID)
		b, _ := io.ReadAll(f)
		f.Close()
		fmt.Println(w.ID == it.ID, w.From == laptop, len(b) == len(sealed))
		_ = s.Delete(desktop, w.ID) // the recipient has it
	}
	fmt.Println("held:", s.Bytes(), "bytes")
	// Output:
	// held: 25 bytes
	// true true true
	// held: 0 bytes
}
