package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// ErrNotRegistered is wrapped by the errors of a Signaling when the device
// it sends to is not connected to the rendezvous.
var ErrNotRegistered = errors.New("rendezvous: device not connected to the rendezvous")

// ErrClosed is returned by a closed Server (and by a second Close).
var ErrClosed = errors.New("rendezvous: closed")

// message is the one JSON shape of every rendezvous frame.
type message struct {
	Op       string `json:"op"`                 // register, registered, send, recv, error
	To       string `json:"to,omitempty"`       // send, error: a DeviceID
	From     string `json:"from,omitempty"`     // recv: the authenticated sender
	Observed string `json:"observed,omitempty"` // registered: our address as the server sees it
	Msg      []byte `json:"msg,omitempty"`      // send, recv: a signaling message (base64 in JSON)
	Error    string `json:"error,omitempty"`    // error
}

const (
	rvMaxFrame   = 2*transport.MaxSignalSize + 1024 // base64 of a signal plus the envelope
	rvRate       = 20                               // messages a second a device may send…
	rvBurst      = 40                               // …with this burst
	rvRegisterTO = 10 * time.Second
)

func writeRV(w io.Writer, m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return transport.WriteFrame(w, b)
}

func readRV(r io.Reader) (message, error) {
	var m message
	b, err := transport.ReadFrame(r, rvMaxFrame)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("rendezvous: malformed message: %w", err)
	}
	if len(m.Msg) > transport.MaxSignalSize {
		return m, fmt.Errorf("rendezvous message of %d bytes, more than %d", len(m.Msg), transport.MaxSignalSize)
	}
	return m, nil
}

// Server relays signaling between the devices connected to it.
// It trusts nothing it relays: the sender of every message is the
// authenticated peer of the connection it arrived on, and the ICE and TLS
// handshakes that follow are end to end, so the server cannot impersonate
// anyone. It is safe for concurrent use.
type Server struct {
	log *slog.Logger

	mu      gosync.Mutex // guards clients and closed
	clients map[crypto.DeviceID]*rvServed
	closed  bool
	relayed atomic.Int64 // messages forwarded (see Relayed)
}

// rvServed is one registered device.
type rvServed struct {
	wmu gosync.Mutex // serializes writes to s
	s   *transport.Stream
}

// NewServer returns a server; log nil discards diagnostics.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{log: log, clients: map[crypto.DeviceID]*rvServed{}}
}

// Serve runs the rendezvous protocol for c's peer on s until the stream,
// the connection or ctx ends. A device connected twice keeps only its
// newest registration.
func (r *Server) Serve(ctx context.Context, c *transport.Conn, s *transport.Stream) error {
	me := &rvServed{s: s}
	from := c.Peer()
	_ = s.SetReadDeadline(time.Now().Add(rvRegisterTO))
	m, err := readRV(s)
	if err != nil {
		return err
	}
	if m.Op != "register" {
		return fmt.Errorf("rendezvous: first message is %q, want register", m.Op)
	}
	_ = s.SetReadDeadline(time.Time{})
	// The reply must be the first thing the device reads: hold its write
	// lock from the moment others can find it until "registered" is sent,
	// so that a message forwarded to it meanwhile waits its turn.
	me.wmu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		me.wmu.Unlock()
		return ErrClosed
	}
	r.clients[from] = me
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.clients[from] == me {
			delete(r.clients, from)
		}
		r.mu.Unlock()
	}()
	_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = writeRV(s, message{Op: "registered", Observed: c.RemoteAddr().String()})
	me.wmu.Unlock()
	if err != nil {
		return err
	}
	r.log.Info("rendezvous: registered", "device", from, "observed", c.RemoteAddr().String())

	stop := context.AfterFunc(ctx, func() { s.Abort() })
	defer stop()
	tokens, last := float64(rvBurst), time.Now()
	for {
		m, err := readRV(s)
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if m.Op != "send" {
			return fmt.Errorf("rendezvous: unexpected %q from %s", m.Op, from.Short())
		}
		now := time.Now()
		tokens = min(rvBurst, tokens+now.Sub(last).Seconds()*rvRate)
		last = now
		if tokens < 1 {
			_ = r.write(me, message{Op: "error", To: m.To, Error: "rate limited"})
			continue
		}
		tokens--
		to, err := crypto.ParseDeviceID(m.To)
		if err != nil {
			_ = r.write(me, message{Op: "error", To: m.To, Error: "bad device ID"})
			continue
		}
		r.mu.Lock()
		dst := r.clients[to]
		r.mu.Unlock()
		if dst == nil {
			_ = r.write(me, message{Op: "error", To: m.To, Error: "not connected to the rendezvous"})
			continue
		}
		if err := r.write(dst, message{Op: "recv", From: from.String(), Msg: m.Msg}); err != nil {
			r.log.Debug("rendezvous: forward failed", "to", to, "err", err)
			_ = r.write(me, message{Op: "error", To: m.To, Error: "delivery failed"})
		} else {
			r.relayed.Add(1)
		}
	}
}

func (r *Server) write(c *rvServed, m message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.s.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return writeRV(c.s, m)
}

// Relayed returns how many signaling messages (ICE offers and answers,
// each with its candidates) the server has forwarded between devices.
func (r *Server) Relayed() int64 { return r.relayed.Load() }

// Registered reports whether device d is currently connected.
func (r *Server) Registered(d crypto.DeviceID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clients[d] != nil
}

// Close ends every registration; later Serve calls return ErrClosed.
func (r *Server) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	clients := r.clients
	r.clients = map[crypto.DeviceID]*rvServed{}
	r.mu.Unlock()
	for _, c := range clients {
		c.s.Abort()
	}
	return nil
}

// Offer is an ICE offer another device sent us through the rendezvous. Pass
// it to Transport.AcceptICE with the client's Signaling if From is welcome.
type Offer struct {
	From crypto.DeviceID
	Msg  []byte
}

// Client is a device's side of the rendezvous.
type Client struct {
	s        *transport.Stream
	observed string
	offers   chan Offer
	done     chan struct{}
	log      *slog.Logger

	wmu gosync.Mutex // serializes writes to s

	mu       gosync.Mutex // guards sessions, err
	sessions map[string]*rvDial
	err      error
}

// NewClient registers on s (a stream to the rendezvous server)
// and reads from it until Close or the stream ends. log nil discards
// diagnostics.
func NewClient(ctx context.Context, s *transport.Stream, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := writeRV(s, message{Op: "register"}); err != nil {
		return nil, fmt.Errorf("rendezvous register: %w", err)
	}
	deadline := time.Now().Add(rvRegisterTO)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetReadDeadline(deadline)
	m, err := readRV(s)
	if err != nil {
		return nil, fmt.Errorf("rendezvous register: %w", err)
	}
	if m.Op != "registered" {
		return nil, fmt.Errorf("rendezvous answered %q to register", m.Op)
	}
	_ = s.SetReadDeadline(time.Time{})
	c := &Client{
		s: s, observed: m.Observed, log: log,
		offers:   make(chan Offer, 16),
		done:     make(chan struct{}),
		sessions: map[string]*rvDial{},
	}
	go c.readLoop()
	return c, nil
}

// Observed is our address as the rendezvous server saw it: the public
// address of our NAT mapping towards the server.
func (c *Client) Observed() string { return c.observed }

// Offers delivers the ICE offers other devices send us. Offers that arrive
// while the channel is full are dropped (the dialer retries).
func (c *Client) Offers() <-chan Offer { return c.offers }

// Done is closed when the client stops (Close, or the stream ended).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client stopped, after Done.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close stops the client and aborts its stream.
func (c *Client) Close() error {
	c.s.Abort()
	<-c.done
	return nil
}

func (c *Client) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		sessions := c.sessions
		c.sessions = map[string]*rvDial{}
		c.mu.Unlock()
		for _, d := range sessions {
			d.fail(fmt.Errorf("rendezvous connection lost: %w", err))
		}
		close(c.done)
	}()
	for {
		var m message
		m, err = readRV(c.s)
		if err != nil {
			return
		}
		switch m.Op {
		case "recv":
			from, perr := crypto.ParseDeviceID(m.From)
			if perr != nil {
				continue
			}
			session, offer, perr := transport.SignalSession(m.Msg)
			if perr != nil {
				c.log.Debug("rendezvous: dropping bad signal", "from", from, "err", perr)
				continue
			}
			if offer {
				select {
				case c.offers <- Offer{From: from, Msg: m.Msg}:
				default:
					c.log.Debug("rendezvous: offer dropped, queue full", "from", from)
				}
				continue
			}
			c.mu.Lock()
			d := c.sessions[session]
			c.mu.Unlock()
			if d != nil && d.to == from {
				d.deliver(from, m.Msg)
			}
		case "error":
			to, perr := crypto.ParseDeviceID(m.To)
			if perr != nil {
				continue
			}
			c.mu.Lock()
			var hit []*rvDial
			for _, d := range c.sessions {
				if d.to == to {
					hit = append(hit, d)
				}
			}
			c.mu.Unlock()
			for _, d := range hit {
				d.fail(fmt.Errorf("%w: %s: %s", ErrNotRegistered, to.Short(), m.Error))
			}
		}
	}
}

func (c *Client) send(ctx context.Context, to crypto.DeviceID, msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return fmt.Errorf("rendezvous closed: %w", c.Err())
	default:
	}
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.s.SetWriteDeadline(deadline)
	return writeRV(c.s, message{Op: "send", To: to.String(), Msg: msg})
}

// Signaling returns a Signaling for one DialICE or AcceptICE call: Send
// relays through the rendezvous, and Recv returns only the answer to the
// offer this view sent (or an error if the rendezvous cannot reach the
// device).
func (c *Client) Signaling() transport.Signaling {
	return &rvDial{c: c, ch: make(chan rvIn, 4)}
}

// rvDial is the Signaling of one ICE attempt.
type rvDial struct {
	c  *Client
	ch chan rvIn

	mu      gosync.Mutex // guards to, session
	to      crypto.DeviceID
	session string
}

type rvIn struct {
	from crypto.DeviceID
	msg  []byte
	err  error
}

var _ transport.Signaling = (*rvDial)(nil)

func (d *rvDial) deliver(from crypto.DeviceID, msg []byte) {
	select {
	case d.ch <- rvIn{from: from, msg: msg}:
	default:
	}
}

func (d *rvDial) fail(err error) {
	select {
	case d.ch <- rvIn{err: err}:
	default:
	}
}

// Send relays msg to device to; an offer registers this view for the
// answer to its session.
func (d *rvDial) Send(ctx context.Context, to crypto.DeviceID, msg []byte) error {
	session, offer, err := transport.SignalSession(msg)
	if err != nil {
		return err
	}
	if offer {
		d.mu.Lock()
		d.to, d.session = to, session
		d.mu.Unlock()
		d.c.mu.Lock()
		d.c.sessions[session] = d
		d.c.mu.Unlock()
	}
	return d.c.send(ctx, to, msg)
}

// Recv returns the answer to this view's offer.
func (d *rvDial) Recv(ctx context.Context) (crypto.DeviceID, []byte, error) {
	defer func() {
		d.mu.Lock()
		s := d.session
		d.mu.Unlock()
		d.c.mu.Lock()
		if d.c.sessions[s] == d {
			delete(d.c.sessions, s)
		}
		d.c.mu.Unlock()
	}()
	select {
	case in := <-d.ch:
		return in.from, in.msg, in.err
	case <-ctx.Done():
		return crypto.DeviceID{}, nil, fmt.Errorf("rendezvous: %w", ctx.Err())
	case <-d.c.done:
		return crypto.DeviceID{}, nil, fmt.Errorf("rendezvous closed: %w", d.c.Err())
	}
}
