//go:build linux

package discovery_test

import (
	"bufio"
	"context"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/discovery"
	"github.com/peersync/peersync/internal/netns"
)

// avahiScript starts a private D-Bus system bus and avahi-daemon in a
// private /run (a tmpfs in the mount namespace that unshare made), so the
// host's bus and Avahi are untouched, then waits until it is killed.
const avahiScript = `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/dbus /run/avahi-daemon
dbus-daemon --system --fork --nopidfile
avahi-daemon --no-drop-root --no-chroot --no-rlimits -D
i=0
# avahi-daemon -D returns before it answers on D-Bus and has no other
# readiness signal: poll its own check, bounded to 10 s.
until avahi-daemon --check 2>/dev/null; do
	i=$((i+1)); [ $i -lt 100 ] || { echo "avahi-daemon did not start"; exit 1; }
	sleep 0.1
done
echo AVAHI-UP
exec sleep 300
`

// startAvahi runs avahi-daemon in ns and returns a function that runs a
// command in its private mount namespace (to reach its D-Bus) and network
// namespace.
func startAvahi(t *testing.T, ns *netns.NS) func(ctx context.Context, name string, args ...string) *exec.Cmd {
	t.Helper()
	for _, tool := range []string{"avahi-daemon", "avahi-browse", "avahi-publish", "avahi-resolve", "dbus-daemon", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			// CI installs these (Debian avahi-daemon, avahi-utils, dbus,
			// util-linux); say so instead of passing silently.
			t.Fatalf("%s not installed: apt-get install avahi-daemon avahi-utils dbus util-linux", tool)
		}
	}
	p := ns.Start(t, nil, "unshare", "-m", "--propagation", "private", "sh", "-c", avahiScript)
	require.True(t, p.WaitOutput("AVAHI-UP", 15*time.Second), "avahi-daemon: %s", p.Output())
	pid := strconv.Itoa(p.Cmd.Process.Pid) // ip netns exec and unshare exec, so this is the shell's PID
	return func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "nsenter", append([]string{"-t", pid, "-m", "-n", name}, args...)...)
	}
}

func TestAvahiInterop(t *testing.T) {
	netns.Require(t)
	for _, tc := range []struct {
		name      string
		sameNetNS bool // our discoverer shares avahi's namespace (and port 5353)
	}{
		{"separate hosts", false},
		{"same host", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lan := netns.NewBridge(t)
			nsAvahi := netns.New(t)
			avahiAddr := lan.Attach(t, nsAvahi, "eth0", netip.MustParsePrefix("10.89.0.1/24"))
			nsOurs, ourAddr := nsAvahi, avahiAddr
			if !tc.sameNetNS {
				nsOurs = netns.New(t)
				ourAddr = lan.Attach(t, nsOurs, "eth0", netip.MustParsePrefix("10.89.0.2/24"))
			}
			avahi := startAvahi(t, nsAvahi)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			ours, theirs := testID(7), testID(42)
			p := startHelper(t, nsOurs, ours, "our laptop", 44996, true, "webview")

			// Avahi sees our announcement, with our TXT: a browsing
			// avahi-browse prints a "=" line once it has resolved the
			// service, which is the signal (ctx bounds a hang).
			resolved := avahiResolve(t, ctx, avahi, "id="+ours.String())
			t.Logf("avahi-browse -rp _peersync._udp: %s", resolved)
			require.NotEmpty(t, resolved, "avahi-browse did not resolve our service")
			f := strings.Split(resolved, ";")
			require.GreaterOrEqual(t, len(f), 10, resolved)
			assert.Equal(t, `our\032laptop\032\040`+ours.Short()+`\041`, f[3], "instance name (avahi escapes in decimal)")
			assert.Equal(t, "_peersync._udp", f[4])
			assert.Equal(t, "webview.local", f[6], "SRV target is the HostName")
			assert.Equal(t, ourAddr.String(), f[7])
			assert.Equal(t, "44996", f[8])
			assert.ElementsMatch(t, []string{`"id=` + ours.String() + `"`, `"v=1"`, `"port=44996"`}, strings.Fields(f[9]), "TXT: id, v, port and nothing else")

			// The HostName resolves to our address through Avahi (the
			// web view's NAME.local).
			out, err := avahi(ctx, "avahi-resolve", "-4", "-n", "webview.local").CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Equal(t, "webview.local\t"+ourAddr.String(), strings.TrimSpace(string(out)))

			// We find a service that Avahi publishes.
			pub := avahi(ctx, "avahi-publish", "-s", "avahi peer", "_peersync._udp", "45000",
				"id="+theirs.String(), "v=1", "port=45000")
			require.NoError(t, pub.Start())
			defer func() { _ = pub.Process.Kill(); _ = pub.Wait() }()
			peer := waitPeer(t, p, theirs, netip.AddrPortFrom(avahiAddr, 45000), 15*time.Second)
			assert.Equal(t, "avahi peer", peer.Name)

			// Avahi's goodbye when the publisher stops reaches us.
			_ = pub.Process.Kill()
			_ = pub.Wait()
			_, gone := waitLast(p, 10*time.Second, func(peer discovery.Peer) bool {
				return peer.Device == theirs && len(peer.Addrs) == 0
			})
			assert.True(t, gone, "avahi's goodbye not seen:\n%s", p.Output())
		})
	}
}

// avahiResolve runs "avahi-browse -rp _peersync._udp" until it prints a
// resolved IPv4 line containing want, and returns that line ("" if ctx ends
// first).
func avahiResolve(t *testing.T, ctx context.Context, avahi func(context.Context, string, ...string) *exec.Cmd, want string) string {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	browse := avahi(ctx, "avahi-browse", "-rp", "_peersync._udp")
	out, err := browse.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, browse.Start())
	defer func() { stop(); _ = browse.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "=;") && strings.Contains(line, ";IPv4;") && strings.Contains(line, want) {
			return line
		}
	}
	return ""
}
