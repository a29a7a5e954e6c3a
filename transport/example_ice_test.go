package transport_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// pipe is a toy rendezvous between two devices: what one sends, the other
// receives.
type pipe struct {
	peer crypto.DeviceID // the device at the other end
	in   chan []byte
	out  chan []byte
}

func (p *pipe) Send(ctx context.Context, to crypto.DeviceID, msg []byte) error {
	select {
	case p.out <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipe) Recv(ctx context.Context) (crypto.DeviceID, []byte, error) {
	select {
	case msg := <-p.in:
		return p.peer, msg, nil
	case <-ctx.Done():
		return crypto.DeviceID{}, nil, ctx.Err()
	}
}

// B reaches A through ICE: the offer and answer go through a Signaling
// (here a pair of channels; in production the rendezvous), then QUIC runs on
// the path ICE selected, over each device's one socket.
func ExampleTransport_DialICE() {
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

	aToB, bToA := make(chan []byte, 1), make(chan []byte, 1)
	sigA := &pipe{peer: bID.DeviceID(), in: bToA, out: aToB}
	sigB := &pipe{peer: aID.DeviceID(), in: aToB, out: bToA}

	// A answers the offer it receives.
	accepted := make(chan *transport.Conn, 1)
	go func() {
		from, offer, err := sigA.Recv(ctx)
		if err != nil {
			log.Fatal(err)
		}
		conn, err := a.AcceptICE(ctx, from, offer, sigA, transport.ICEConfig{})
		if err != nil {
			log.Fatal(err)
		}
		accepted <- conn
	}()

	conn, err := b.DialICE(ctx, aID.DeviceID(), sigB, transport.ICEConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("B:", conn.Path(), conn.Peer() == aID.DeviceID())
	fmt.Println("A:", (<-accepted).Path())
	// Output:
	// B: ice-host true
	// A: ice-host
}
