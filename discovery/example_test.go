package discovery_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/peersync/peersync/deviceid"
	"github.com/peersync/peersync/discovery"
)

// The engine's use: announce our transport's port, then use what the LAN
// shows for the peers in the sync table.
func Example() {
	var me deviceid.ID // in real life: identity.DeviceID()
	copy(me[:], "the Ed25519 public key goes here")
	d, err := discovery.New(discovery.Config{
		Device:   me,
		Name:     "laptop",
		Port:     44996,
		Announce: true, // false: browse only
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		for p := range d.Updates() { // closed when Run returns
			if len(p.Addrs) == 0 {
				fmt.Println("left:", p)
				continue
			}
			fmt.Println("seen:", p) // dial p.Addrs if p.Device is in the sync table
		}
	}()
	if err := d.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

func ExamplePeer_String() {
	var id deviceid.ID
	copy(id[:], "the Ed25519 public key goes here")
	p := discovery.Peer{
		Device: id,
		Name:   "laptop",
		Addrs: []netip.AddrPort{
			netip.MustParseAddrPort("192.168.1.20:44996"),
			netip.MustParseAddrPort("[fe80::1%eth0]:44996"),
		},
		Seen:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Expires: time.Date(2026, 1, 2, 3, 6, 5, 0, time.UTC),
	}
	fmt.Println(p)
	fmt.Println("expires in", p.Expires.Sub(p.Seen))
	// Output:
	// laptop (ORUGKIC) 192.168.1.20:44996 [fe80::1%eth0]:44996
	// expires in 2m0s
}
