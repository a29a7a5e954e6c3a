package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/internal/atomicfile"
)

func ExampleWriteFile() {
	dir, _ := os.MkdirTemp("", "atomicfile")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.json")

	if err := atomicfile.WriteFile(path, []byte(`{"version":1}`), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(path)
	fmt.Println(string(b))
	// Output: {"version":1}
}
