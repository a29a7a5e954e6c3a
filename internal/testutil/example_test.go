package testutil_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/internal/testutil"
)

func ExampleSameTree() {
	a, _ := os.MkdirTemp("", "a")
	b, _ := os.MkdirTemp("", "b")
	defer os.RemoveAll(a)
	defer os.RemoveAll(b)
	_ = os.WriteFile(filepath.Join(a, "x.txt"), []byte("1"), 0o644)
	_ = os.WriteFile(filepath.Join(b, "x.txt"), []byte("2"), 0o644)

	same, why := testutil.SameTree(a, b)
	fmt.Println(same, why != "")
	// Output: false true
}
