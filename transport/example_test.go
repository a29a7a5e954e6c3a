package transport_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// Two devices on loopback that trust each other: B dials A, opens a stream
// and sends "hello" as one frame; A answers on the same stream.
func Example() {
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

	// A serves one connection, one stream.
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
			fmt.Printf("A got %q from B: %v\n", msg, conn.Peer() == bID.DeviceID())
			if err := transport.WriteFrame(s, []byte("hello, B")); err != nil {
				return err
			}
			return s.Close()
		}()
	}()

	// B dials A, naming the device it expects there.
	conn, err := b.Dial(ctx, a.LocalAddr().String(), aID.DeviceID())
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
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		log.Fatal("expected EOF, got ", err)
	}
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	fmt.Printf("B got %q\n", reply)
	// Output:
	// A got "hello" from B: true
	// B got "hello, B"
}
