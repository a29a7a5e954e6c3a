// Package impair gives tests a bad network: two network namespaces joined
// by an Ethernet "wire" that delays every frame and loses a random
// fraction of them, for TCP, UDP (QUIC) and anything else alike.
//
//	w := impair.New(t, impair.Config{Delay: 20 * time.Millisecond, Loss: 0.01})
//	// w.A has eth0 = impair.AddrA (10.99.0.1/24), w.B has eth0 = impair.AddrB
//	// (10.99.0.2/24); run processes with w.A.Start, open sockets in w.B.Do.
//	ab, ba := w.Stats() // what the wire did, per direction
//
// # Why not netem
//
// The usual tool, "tc qdisc add ... netem delay 20ms loss 1%", needs the
// sch_netem kernel module, which the kernel of our machines and CI does not
// have ("Specified qdisc kind is unknown"). iptables' statistic match can
// drop at random but cannot delay; tbf can shape but not delay. So the
// delay line lives in user space, in the test process.
//
// # How the wire works
//
//	namespace A              namespace Middle                 namespace B
//	eth0 10.99.0.1 ══veth══ la ─┐  forwarder   ┌─ lb ══veth══ eth0 10.99.0.2
//	                            └─ packet sockets ─┘
//
// A and B are plain hosts on one /24, each with a static neighbour entry
// for the other (so no ARP exchange is delayed or lost before the first
// packet). Their eth0 is one end of a veth pair whose other end (la, lb)
// is in a third namespace, Middle, which has no addresses: its kernel takes
// no part. The forwarder opens one AF_PACKET socket on each leg (inside
// Middle, with netns.NS.Do; a socket stays in the namespace it was made
// in, so the goroutines using it may run on any thread). For each
// direction one goroutine reads frames from one leg (recvmmsg, up to 64 at
// a time, waiting in Go's poller) and pushes them into a Line; another pops
// the frames that are due and writes them to the other leg (sendmmsg). A
// frame never crosses without the forwarder: the legs are not bridged.
//
// The Line (line.go) is the whole impairment and has no sockets, so it is
// tested without root (and shown in ExampleLine): Push decides loss with a
// seeded PCG generator, drops the frame if the bytes queued would pass the
// limit (drop-tail, 16 MiB by default, which is 0.16 s at 100 MiB/s: a
// deep but finite router buffer), and otherwise stamps it due at
// arrival+Delay. Every frame waits the same delay, so the queue is FIFO and
// order is preserved (no reordering, no jitter). Loss is per frame and
// independent (Bernoulli), in each direction, on data and ACKs alike; ARP
// is never lost. The wire adds no bandwidth limit: the bottleneck is
// whatever is slowest, usually the senders' windows.
//
// # Offloads, checksums and why AF_PACKET rather than TUN
//
// Two kernel features would spoil per-packet loss. Segmentation offload
// (TSO, GSO, UDP GSO, which quic-go uses) lets a sender hand a veth a 64
// KiB "superframe" that is cut into packets only at a real NIC; on a veth
// it stays whole, so a packet socket would read, and lose, 44 packets at a
// time. Receive coalescing (GRO) does the same on the way in. New turns
// all of them off on all four interfaces with the ethtool ioctl
// (ethtool_linux.go, the equivalent of "ethtool -K eth0 tso off gso off
// ..."; the ethtool command is not needed), then checks they are off. The
// senders' stacks still build large buffers and segment them in software
// just before the veth, which is cheap. The forwarder counts any
// superframe that still shows up (Stats.GSOFrames; the tests require
// zero) and forwards it whole rather than corrupting it.
//
// Checksum offload stays on: a packet sent on a veth normally carries a
// "checksum to be completed" mark instead of a checksum. The sockets use
// PACKET_VNET_HDR, which puts a 10-byte virtio-net header before each
// frame read and takes one before each frame written, exactly as between a
// VM and its tap device; the forwarder passes it through untouched, so the
// receiving stack knows the checksum is fine (without it, every TCP and UDP
// packet would arrive with a bad checksum and be dropped).
//
// TUN devices would also work (the middle namespace would route between
// two tun interfaces), but then the middle kernel routes, decrements TTLs
// and needs addresses, and the frames still have to be read and written
// one syscall each. Packet sockets on veth legs keep the wire a layer-2
// cable that A and B cannot tell from a real one, with batched syscalls.
//
// # Throughput
//
// On the 2-core development machine, kernel TCP through a wire without
// delay moves 250–340 MiB/s (TestWireTCPIntact logs it), so the forwarder
// is not what the benchmarks measure. With delay, TCP is bounded by its
// send buffer (net.ipv4.tcp_wmem max 4 MiB here) and QUIC by quic-go's
// windows, as on a real path.
//
// # Benchmarks and the end-to-end test
//
// BenchmarkImpaired compares kernel TCP (BBR, CUBIC), peersync's QUIC
// transport (one and four connections) and its TCP+TLS path across 1%/20
// ms and 5%/100 ms wires; TestLossySync syncs a 20 MiB folder between two
// desktop processes across 5%/100 ms (only with PEERSYNC_IMPAIR_SYNC=1,
// for now: see its doc). Both need root; the figures are in BENCHMARKS.md.
//
// The package builds on Linux only, except Line.
package impair
