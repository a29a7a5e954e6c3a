package transport_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// B reaches A over TCP (for a network that drops UDP): same identities,
// same Authorize, same streams as over QUIC; A's one Accept returns both
// kinds.
func ExampleTransport_DialTCP() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	aID, _ := crypto.GenerateIdentity(nil)
	bID, _ := crypto.GenerateIdentity(nil)
	only := func(want crypto.DeviceID) func(crypto.DeviceID) error {
		return func(d crypto.DeviceID) error {
			if d != want {
				return crypto.ErrUnknownPeer
			}
			return nil
		}
	}
	// A listens on UDP and TCP, on the same port number.
	a, err := transport.New(transport.Config{Identity: aID, ListenAddr: "127.0.0.1:0", Authorize: only(bID.DeviceID())})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := transport.New(transport.Config{Identity: bID, ListenAddr: "127.0.0.1:0", Authorize: only(aID.DeviceID())})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	served := make(chan error, 1)
	go func() {
		served <- func() error {
			conn, err := a.Accept(ctx)
			if err != nil {
				return err
			}
			s, err := conn.AcceptStream(ctx)
			if err != nil {
				return err
			}
			msg, err := transport.ReadFrame(s, 0)
			if err != nil {
				return err
			}
			fmt.Printf("A got %q over %s\n", msg, conn.Path())
			if err := transport.WriteFrame(s, []byte("hello, B")); err != nil {
				return err
			}
			return s.Close()
		}()
	}()

	conn, err := b.DialTCP(ctx, a.TCPAddr().String(), aID.DeviceID())
	if err != nil {
		log.Fatal(err)
	}
	s, err := conn.OpenStream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := transport.WriteFrame(s, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	s.Close() // we send nothing more; A can still answer
	reply, err := transport.ReadFrame(s, 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	fmt.Printf("B got %q; same port: %v\n", reply,
		a.TCPAddr().(*net.TCPAddr).Port == a.LocalAddr().(*net.UDPAddr).Port)
	// Output:
	// A got "hello" over tcp
	// B got "hello, B"; same port: true
}
