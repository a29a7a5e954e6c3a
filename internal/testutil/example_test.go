package testutil_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

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

func ExampleClock() {
	clock := testutil.NewClock(time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC))
	now := clock.Now // what a Config's Now field takes
	fmt.Println(now().Format("15:04"))
	clock.Advance(90 * time.Minute)
	fmt.Println(now().Format("15:04"))
	clock.Set(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC))
	fmt.Println(now().Format("Jan 2 15:04"))
	// Output:
	// 21:00
	// 22:30
	// Dec 5 06:00
}
