//go:build linux

// Package netns builds throwaway Linux network topologies for tests:
// network namespaces, bridges ("switches"), veth links between them, and
// ways to run a command or a function inside a namespace. Everything a test
// creates is deleted by t.Cleanup, and nothing is created in the host's own
// namespace (bridges live in a namespace of their own).
//
// The common path:
//
//	netns.Require(t) // skips loudly unless root with iproute2
//	lan := netns.NewBridge(t)
//	a, b := netns.New(t), netns.New(t)
//	addrA := lan.Attach(t, a, "eth0", netip.MustParsePrefix("10.77.0.1/24"))
//	lan.Attach(t, b, "eth0", netip.MustParsePrefix("10.77.0.2/24"))
//	p := b.Start(t, []string{"FOO=1"}, "/path/to/binary", "-flag") // output captured
//	out, err := a.Output(ctx, nil, "ip", "addr")                      // run to completion
//	err = a.Do(func() error { ln, err := net.Listen("tcp", ":80"); ... })
//
// Namespaces have no default route; multicast needs a route, which Attach
// adds (224.0.0.0/4 on the first interface attached to a bridge). A router
// is a namespace with two links and Sysctl("net.ipv4.ip_forward", "1"); NAT
// is iptables run with Output inside it.
//
// The package builds on Linux only; test files that use it need a linux
// build constraint.
//
// Commands run through "ip netns exec", which also gives them a private
// mount namespace with a /sys of the namespace; they are started in their
// own process group, and Start's cleanup kills that group.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// counter makes names unique within this process; the PID makes them
// unique across test processes running at once.
var counter atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%dx%d", prefix, os.Getpid(), counter.Add(1))
}

var (
	requireOnce sync.Once
	requireErr  error
)

// Require skips the test, loudly (on stderr as well, so it shows without
// -v), unless network namespaces can be made here: root, the ip command,
// and a kernel and container that allow "ip netns add".
func Require(t testing.TB) {
	t.Helper()
	requireOnce.Do(func() { requireErr = probe() })
	if requireErr != nil {
		msg := fmt.Sprintf("SKIPPING %s: network namespace tests impossible here: %v (CI runs them as root with iproute2)", t.Name(), requireErr)
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		t.Skip(msg)
	}
}

func probe() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("no ip command (install iproute2)")
	}
	name := uniqueName("psprobe")
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// NS is a network namespace made by New.
type NS struct {
	// Name is the namespace's name, as in "ip netns exec Name ...".
	Name string
}

// New creates a namespace with its loopback up and IPv6 duplicate address
// detection off (so IPv6 addresses are usable at once). t.Cleanup kills
// processes left in it and deletes it, which also deletes its interfaces.
func New(t testing.TB) *NS {
	t.Helper()
	Require(t)
	n := &NS{Name: uniqueName("ps")}
	if err := run("ip", "netns", "add", n.Name); err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() { n.destroy(t) })
	n.MustIP(t, "link", "set", "lo", "up")
	// Best effort: IPv6 may be disabled in this kernel.
	_ = run("ip", "netns", "exec", n.Name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	return n
}

func (n *NS) destroy(t testing.TB) {
	// Processes still inside (started by this test) would keep nothing
	// alive, but would keep running: end them first.
	if out, err := exec.Command("ip", "netns", "pids", n.Name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if err := run("ip", "netns", "del", n.Name); err != nil {
		t.Errorf("netns cleanup: %v", err)
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// IP runs "ip -n <ns> args...".
func (n *NS) IP(args ...string) error {
	return run("ip", append([]string{"-n", n.Name}, args...)...)
}

// MustIP is IP that fails the test on error.
func (n *NS) MustIP(t testing.TB, args ...string) {
	t.Helper()
	if err := n.IP(args...); err != nil {
		t.Fatalf("netns: %v", err)
	}
}

// Sysctl sets a sysctl inside the namespace (for the net.* keys that are
// per namespace, such as net.ipv4.ip_forward).
func (n *NS) Sysctl(key, value string) error {
	return run("ip", "netns", "exec", n.Name, "sysctl", "-qw", key+"="+value)
}

// Command returns a command that runs name with args inside the namespace
// (through "ip netns exec"), in its own process group; cancelling ctx kills
// the whole group. env is added to the current environment. Set Stdout and
// Stderr as usual.
func (n *NS) Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Output runs name inside the namespace to completion and returns its
// standard output; the error includes standard error.
func (n *NS) Output(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := n.Command(ctx, env, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("in %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// Do runs fn on an OS thread switched into the namespace. Sockets fn opens
// stay in the namespace after Do returns; goroutines fn starts do not run
// in it (Go moves them to other threads), and neither does anything that
// opens sockets later (net.Interfaces, a dial). Use a Command for code that
// needs the namespace throughout.
func (n *NS) Do(fn func() error) error {
	target, err := os.Open("/var/run/netns/" + n.Name)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// If switching back fails, this goroutine exits still locked
		// and Go discards the thread instead of reusing it.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: setns %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns: setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Proc is a process started by Start, with its output captured.
type Proc struct {
	Cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	err  error // set before done is closed
}

// Start starts name inside the namespace in the background, capturing
// standard output and error (together). t.Cleanup kills its process group
// and waits for it; the test logs its output if it failed.
func (n *NS) Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proc{Cmd: n.Command(ctx, env, name, args...), done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = &p.out, &p.out
	if err := p.Cmd.Start(); err != nil {
		cancel()
		t.Fatalf("netns: start %s in %s: %v", name, n.Name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("output of %s in %s:\n%s", name, n.Name, p.Output())
		}
	})
	return p
}

// Output returns what the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done is closed.
func (p *Proc) Err() error { <-p.done; return p.err }

// Signal sends sig to the process's group.
func (p *Proc) Signal(sig syscall.Signal) error { return syscall.Kill(-p.Cmd.Process.Pid, sig) }

// WaitOutput waits until the output contains s, the process exits, or
// timeout passes; it reports whether s was seen.
func (p *Proc) WaitOutput(s string, timeout time.Duration) bool {
	return p.WaitFor(func(out string) bool { return strings.Contains(out, s) }, timeout)
}

// WaitFor waits until cond holds for the output so far, the process exits,
// or timeout passes (a bound on a hang, not a measurement); it reports
// whether cond held. cond is checked again on every write by the process,
// so a line the process prints is the signal, with no polling.
func (p *Proc) WaitFor(cond func(output string) bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		out, grew := p.out.snapshot()
		if cond(out) {
			return true
		}
		select {
		case <-deadline.C:
			return false
		case <-p.done:
			return cond(p.Output())
		case <-grew:
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use that tells waiters
// when it grows.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	grew chan struct{} // closed by the next Write; nil if no one waits
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.grew != nil {
		close(s.grew)
		s.grew = nil
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// snapshot returns the content so far and a channel closed by the next
// Write.
func (s *syncBuffer) snapshot() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grew == nil {
		s.grew = make(chan struct{})
	}
	return s.b.String(), s.grew
}

// Bridge is an Ethernet switch: a Linux bridge in a namespace of its own.
type Bridge struct {
	// NS holds the bridge, named "br0" in it.
	NS *NS

	mu    sync.Mutex
	ports int
	// routed records namespaces that already got a multicast route.
	routed map[string]bool
}

// NewBridge creates a switch. Multicast snooping is off, so every port
// sees all multicast (as on a home router).
func NewBridge(t testing.TB) *Bridge {
	t.Helper()
	b := &Bridge{NS: New(t), routed: map[string]bool{}}
	b.NS.MustIP(t, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	b.NS.MustIP(t, "link", "set", "br0", "up")
	return b
}

// Attach plugs ns into the switch with a veth whose end in ns is named
// ifname and has address addr (e.g. 10.77.0.1/24). The first interface of
// ns attached to a Bridge also gets the route 224.0.0.0/4 (unless ns has a
// default route), without which a namespace cannot send IPv4 multicast;
// IPv6 needs none (the kernel adds ff00::/8 for every interface).
// It returns addr's address.
func (b *Bridge) Attach(t testing.TB, ns *NS, ifname string, addr netip.Prefix) netip.Addr {
	t.Helper()
	b.mu.Lock()
	b.ports++
	port := fmt.Sprintf("p%d", b.ports)
	first := !b.routed[ns.Name]
	b.routed[ns.Name] = true
	b.mu.Unlock()
	b.NS.MustIP(t, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns.Name)
	b.NS.MustIP(t, "link", "set", port, "master", "br0", "up")
	ns.MustIP(t, "addr", "add", addr.String(), "dev", ifname)
	ns.MustIP(t, "link", "set", ifname, "up")
	if first && !hasDefault(ns) {
		ns.MustIP(t, "route", "add", "224.0.0.0/4", "dev", ifname)
	}
	return addr.Addr()
}

func hasDefault(ns *NS) bool {
	out, err := exec.Command("ip", "-n", ns.Name, "route", "show", "default").Output()
	return err == nil && len(bytes.TrimSpace(out)) > 0
}

// Link joins two namespaces with a veth pair, a point-to-point cable, with
// the given interface names and addresses (e.g. for a router between a LAN
// and a "WAN").
func Link(t testing.TB, a *NS, aIf string, aAddr netip.Prefix, b *NS, bIf string, bAddr netip.Prefix) {
	t.Helper()
	a.MustIP(t, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.MustIP(t, "addr", "add", aAddr.String(), "dev", aIf)
	b.MustIP(t, "addr", "add", bAddr.String(), "dev", bIf)
	a.MustIP(t, "link", "set", aIf, "up")
	b.MustIP(t, "link", "set", bIf, "up")
}

// StopAll interrupts each process (SIGINT to its group), waits up to 15 s
// for it, and reports an error exit or a hang as a test error; when the test
// has failed, it logs each process's output.
func StopAll(t testing.TB, procs ...*Proc) {
	t.Helper()
	for _, p := range procs {
		_ = p.Signal(syscall.SIGINT)
		select {
		case <-p.Done():
			if err := p.Err(); err != nil {
				t.Errorf("%s did not exit cleanly on SIGINT: %v", p.Cmd.Path, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15 s of SIGINT", p.Cmd.Path)
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.Cmd.Path, p.Output())
		}
	}
}
