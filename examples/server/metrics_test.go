package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// metricValue returns the value of the sample named by the regexp-quoted
// series in a scrape (-1 when absent).
func metricValue(body, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestMetricsTrafficAndRendezvous scrapes a real server's metrics while
// real desktops use it: alpha's 512 KiB file arrives (bundle bytes
// received count at least its size), beta fetches it from the server
// (bytes sent count at least its size), and alpha and beta, given only each
// other's DeviceID for a second folder the server does not share, meet
// through the server's rendezvous (at least an offer and an answer
// relayed); while beta is offline, alpha's bundle of that folder waits in
// the server's mailbox (its bytes shown, then gone once beta took it).
func TestMetricsTrafficAndRendezvous(t *testing.T) {
	s, a, b := newHostedPair(t)
	s.cli(t, "peer", "add", "--name", "alpha", "--folders", "docs", a.id)
	s.cli(t, "peer", "add", "--name", "beta", "--folders", "docs", b.id)
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	pics := map[*proc]string{a: t.TempDir(), b: t.TempDir()}
	for p, other := range map[*proc]*proc{a: b, b: a} {
		p.cli(t, "peer", "add", "--name", "server", "--addr", addr, "--folders", "docs", s.id)
		p.cli(t, "folder", "add", "--id", "pics", pics[p])
		p.cli(t, "peer", "add", "--name", "other", "--folders", "pics", other.id)
	}
	big := make([]byte, 512<<10)
	_, err := rand.Read(big)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a.folder, "big.bin"), big, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pics[a], "p.txt"), []byte("met through the rendezvous\n"), 0o644))

	stun := fmt.Sprintf("127.0.0.1:%d", testutil.FreeUDPPort(t))
	d := startDaemon(t, s, "--stun-listen", stun, "--metrics", "127.0.0.1:0")
	metricsURL := d.expect(t, `^metrics on (http://\S+/metrics)$`)[1]
	body := scrape(t, metricsURL)
	for _, series := range []string{`peersync_bundle_bytes_total{direction="receive"}`, `peersync_bundle_bytes_total{direction="send"}`, `peersync_rendezvous_relayed_total`, `peersync_mailbox_bytes`} {
		require.Equal(t, 0.0, metricValue(body, series), "%s before any device came", series)
	}
	rv := fmt.Sprintf("%s@%s", s.id, addr)
	a.start(t, "--ui", "none", "--rendezvous", rv, "--stun", stun)
	waitSame(t, a.folder, s.folder)
	// Polled: a scrape is the only way to see the metrics (bounded).
	require.Eventually(t, func() bool {
		return metricValue(scrape(t, metricsURL), `peersync_bundle_bytes_total{direction="receive"}`) >= float64(len(big))
	}, 30*time.Second, 20*time.Millisecond, "bytes received counted")

	// beta is offline: alpha leaves pics, which the server does not
	// share, sealed in the server's mailbox.
	require.Eventually(t, func() bool {
		return metricValue(scrape(t, metricsURL), `peersync_mailbox_bytes`) > 0
	}, 30*time.Second, 20*time.Millisecond, "a deposit for beta held")

	b.start(t, "--ui", "none", "--rendezvous", rv, "--stun", stun)
	waitSame(t, a.folder, b.folder)
	require.Eventually(t, func() bool {
		return metricValue(scrape(t, metricsURL), `peersync_bundle_bytes_total{direction="send"}`) >= float64(len(big))
	}, 30*time.Second, 20*time.Millisecond, "bytes sent counted")
	waitSame(t, pics[a], pics[b])
	require.Eventually(t, func() bool {
		return metricValue(scrape(t, metricsURL), `peersync_rendezvous_relayed_total`) >= 2
	}, 30*time.Second, 20*time.Millisecond, "an offer and an answer relayed")
	require.Eventually(t, func() bool {
		return metricValue(scrape(t, metricsURL), `peersync_mailbox_bytes`) == 0
	}, 30*time.Second, 20*time.Millisecond, "beta took its deposit")
	t.Logf("metrics:\n%s", regexp.MustCompile(`(?m)^peersync_(bundle_bytes_total|rendezvous|mailbox).*$`).FindAllString(scrape(t, metricsURL), -1))
}
