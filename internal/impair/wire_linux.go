package impair

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// vnetHdrLen is the size of struct virtio_net_hdr, which the kernel
	// puts before every frame read from, and expects before every frame
	// written to, a packet socket with PACKET_VNET_HDR.
	vnetHdrLen = 10
	// batch is how many frames one recvmmsg or sendmmsg moves at most.
	batch = 64
	// slotSize holds the largest frame a packet socket can hand us even if
	// an offload was left on (a 64 KiB GSO frame), with its vnet header.
	slotSize = vnetHdrLen + 64<<10 + 64
	// sockBuf is the receive and send buffer of each packet socket.
	sockBuf = 32 << 20
)

// packetSock is a packet socket bound to one leg of the wire, registered
// with Go's poller so that reads and writes wait without a thread and Close
// ends them.
type packetSock struct {
	f  *os.File
	rc syscall.RawConn
}

// openPacketSock opens a packet socket on interface ifname; it must run in
// the namespace that holds ifname (netns.NS.Do).
func openPacketSock(ifname string) (*packetSock, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("impair: %w", err)
	}
	// Protocol 0 receives nothing until bind, so no frame of another
	// interface slips in before it.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("impair: packet socket: %w", err)
	}
	for _, o := range []struct {
		level, opt, val int
		name            string
	}{
		// Checksum state (and, if an offload slipped through, GSO
		// state) travels with each frame, as between a VM and its tap.
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"},
		// Do not read back the frames we write on this leg.
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
		// veth has no queue anyway; skip the qdisc layer.
		{unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS"},
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sockBuf, "SO_RCVBUFFORCE"},
		{unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuf, "SO_SNDBUFFORCE"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("impair: setsockopt %s: %w", o.name, err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("impair: bind packet socket to %s: %w", ifname, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("impair: %w", err)
	}
	return &packetSock{f: f, rc: rc}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// mmsg is a reusable recvmmsg/sendmmsg vector.
type mmsg struct {
	hdrs [batch]unix.Mmsghdr
	iovs [batch]unix.Iovec
}

// point aims message i at b.
func (m *mmsg) point(i int, b []byte) {
	m.iovs[i].Base = &b[0]
	m.iovs[i].SetLen(len(b))
	m.hdrs[i].Hdr = unix.Msghdr{Iov: &m.iovs[i], Iovlen: 1}
	m.hdrs[i].Len = 0
}

func mmsgCall(trap uintptr, fd uintptr, m *mmsg, n int, flags int) (int, syscall.Errno) {
	r, _, errno := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n), uintptr(flags), 0, 0)
	return int(r), errno
}

// recv reads up to len(bufs) frames into bufs and returns their lengths'
// count, filling lens; it waits for the first one.
func (s *packetSock) recv(m *mmsg, bufs [][]byte, lens []int) (int, error) {
	for i := range bufs {
		m.point(i, bufs[i])
	}
	var n int
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) bool {
		n, errno = mmsgCall(unix.SYS_RECVMMSG, fd, m, len(bufs), unix.MSG_DONTWAIT)
		return errno != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	for i := range n {
		lens[i] = int(m.hdrs[i].Len)
		if m.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
			lens[i] = -1
		}
	}
	return n, nil
}

// send writes frames, waiting while the socket is full; a frame the kernel
// refuses (ENOBUFS: the receiving side's backlog is full, as a full NIC
// ring would drop it) is counted in dropped and skipped.
func (s *packetSock) send(m *mmsg, frames [][]byte) (dropped int, err error) {
	for len(frames) > 0 {
		k := min(len(frames), batch)
		for i := range k {
			m.point(i, frames[i])
		}
		var n int
		var errno syscall.Errno
		err := s.rc.Write(func(fd uintptr) bool {
			n, errno = mmsgCall(unix.SYS_SENDMMSG, fd, m, k, unix.MSG_DONTWAIT)
			return errno != unix.EAGAIN
		})
		if err != nil {
			return dropped, err
		}
		switch {
		case errno == 0:
			frames = frames[n:]
		case errno == unix.ENOBUFS || errno == unix.ENETDOWN || errno == unix.ENXIO || errno == unix.EMSGSIZE || errno == unix.EINVAL:
			dropped++
			frames = frames[1:]
		default:
			return dropped, errno
		}
	}
	return dropped, nil
}

// kernelDrops returns the frames the kernel dropped on this socket's receive
// side since the last call (its buffer was full: the forwarder fell behind).
func (s *packetSock) kernelDrops() uint64 {
	var drops uint64
	_ = s.rc.Control(func(fd uintptr) {
		st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err == nil {
			drops = uint64(st.Drops)
		}
	})
	return drops
}

// Stats counts what one direction of a Wire did.
type Stats struct {
	LineStats
	// KernelDrops is the frames the kernel dropped before the forwarder
	// read them (its socket buffer was full): loss the Config did not ask
	// for. Zero unless the forwarder is the bottleneck.
	KernelDrops uint64
	// SendDrops is the frames the kernel refused to send on.
	SendDrops uint64
	// Truncated is the frames too large for the forwarder's buffers,
	// dropped.
	Truncated uint64
	// GSOFrames is the frames that arrived as one segmentation-offload
	// superframe (several packets in one): they are forwarded whole, so loss
	// hits them as a unit. Zero when offloads are off, as New makes them.
	GSOFrames uint64
}

// direction forwards the frames arriving on one leg out of the other.
type direction struct {
	in, out *packetSock

	mu    sync.Mutex
	line  *Line
	stats Stats // all but LineStats, which line keeps

	wake chan struct{} // the queue went from empty to not
	stop chan struct{}
	wg   sync.WaitGroup
	err  atomic.Pointer[error] // first unexpected error, if any
}

func newDirection(in, out *packetSock, line *Line) *direction {
	return &direction{in: in, out: out, line: line, wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

func (d *direction) fail(err error) {
	select {
	case <-d.stop:
		return // closing: errors are expected
	default:
	}
	d.err.CompareAndSwap(nil, &err)
}

func (d *direction) start() {
	d.wg.Add(2)
	go d.receive()
	go d.transmit()
}

// receive reads frames until the socket is closed and pushes them into the
// line.
func (d *direction) receive() {
	defer d.wg.Done()
	m := new(mmsg) // on the heap: the kernel reads pointers into it
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, slotSize)
	}
	lens := make([]int, batch)
	for {
		n, err := d.in.recv(m, bufs, lens)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				d.fail(fmt.Errorf("impair: receive: %w", err))
			}
			return
		}
		now := time.Now()
		d.mu.Lock()
		_, wasQueued := d.line.Len()
		for i := range n {
			if lens[i] < vnetHdrLen+14 {
				d.stats.Truncated++
				continue
			}
			fr := bufs[i][:lens[i]]
			if fr[1] != 0 { // virtio_net_hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE
				d.stats.GSOFrames++
			}
			if binary.BigEndian.Uint16(fr[vnetHdrLen+12:]) == unix.ETH_P_ARP {
				d.line.PushNoLoss(now, fr)
			} else {
				d.line.Push(now, fr)
			}
		}
		_, queued := d.line.Len()
		d.mu.Unlock()
		if wasQueued == 0 && queued > 0 {
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
	}
}

// transmit sends each frame when it is due, until stop.
func (d *direction) transmit() {
	defer d.wg.Done()
	m := new(mmsg) // on the heap: the kernel reads pointers into it
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	frames := make([][]byte, 0, batch)
	for {
		d.mu.Lock()
		frames = d.line.Pop(time.Now(), frames[:0], batch)
		next, pending := d.line.Next()
		d.mu.Unlock()
		if len(frames) > 0 {
			dropped, err := d.out.send(m, frames)
			d.mu.Lock()
			d.stats.SendDrops += uint64(dropped)
			d.line.Recycle(frames)
			d.mu.Unlock()
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					d.fail(fmt.Errorf("impair: send: %w", err))
				}
				return
			}
			continue
		}
		var due <-chan time.Time
		if pending {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-due:
		}
	}
}

// close stops both goroutines; the caller closes the sockets too.
func (d *direction) close() {
	close(d.stop)
}

func (d *direction) snapshot() Stats {
	drops := d.in.kernelDrops()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.KernelDrops += drops
	s := d.stats
	s.LineStats = d.line.Stats()
	return s
}

func (d *direction) setLink(l Link) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.line.link = l
}
