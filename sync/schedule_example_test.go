package sync_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/peersync/peersync/sync"
)

// A sync window on weeknights, across midnight: when it is open, and when
// it next changes. Engine.SetSchedule (global) and SetPeerSchedule (one
// peer) take such a window.
func ExampleWindow() {
	w, err := sync.ParseWindow("mon,tue,wed,thu,fri", "22:00", "06:00")
	if err != nil {
		fmt.Println(err)
		return
	}
	friday := time.Date(2026, 12, 4, 23, 30, 0, 0, time.UTC)
	saturday := time.Date(2026, 12, 5, 23, 30, 0, 0, time.UTC)
	fmt.Println(w.Open(friday), w.Next(friday).Format("Mon 15:04"))
	fmt.Println(w.Open(saturday), w.Next(saturday).Format("Mon 15:04"))
	b, _ := json.Marshal(w)
	fmt.Println(string(b))
	// Output:
	// true Sat 06:00
	// false Mon 22:00
	// {"days":["mon","tue","wed","thu","fri"],"from":"22:00","to":"06:00"}
}
