package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/internal/cli"
	"github.com/peersync/peersync/sync"
)

// serverMetrics are the Prometheus metrics of `run --metrics`: counters fed
// by the engine's events, gauges read from its status at each scrape.
type serverMetrics struct {
	reg         *prometheus.Registry
	applied     *prometheus.CounterVec // by folder
	refused     *prometheus.CounterVec // by folder
	fetchFailed *prometheus.CounterVec // by folder
	commits     *prometheus.CounterVec // by folder
	connects    prometheus.Counter
}

// newMetrics registers the metrics; relay, if not nil, adds the TURN
// allocations.
func newMetrics(e *sync.Engine, relay *relay) *serverMetrics {
	m := &serverMetrics{reg: prometheus.NewRegistry()}
	folderCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "peersync", Name: name, Help: help}, []string{"folder"})
	}
	m.applied = folderCounter("bundles_applied_total", "Bundles from peers applied to a folder.")
	m.refused = folderCounter("bundles_refused_total", "Bundles from peers refused as broken or hostile (the peer was disconnected).")
	m.fetchFailed = folderCounter("fetches_failed_total", "Bundle fetches abandoned for another reason (a cut connection, a timeout); retried.")
	m.commits = folderCounter("local_commits_total", "Commits made here by scans (one per changed file).")
	m.connects = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "peersync", Name: "peer_connections_total",
		Help: "Authenticated peer connections established."})
	m.reg.MustRegister(m.applied, m.refused, m.fetchFailed, m.commits, m.connects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		statusCollector{e: e, relay: relay})
	return m
}

// observe counts one engine event.
func (m *serverMetrics) observe(ev sync.Event) {
	switch ev.Kind {
	case sync.EventRemoteApplied:
		m.applied.WithLabelValues(ev.Folder).Inc()
	case sync.EventLocalChanges:
		m.commits.WithLabelValues(ev.Folder).Add(float64(len(ev.Changes)))
	case sync.EventPeerConnected:
		m.connects.Inc()
	case sync.EventError:
		if ev.Peer.IsZero() || ev.Folder == "" {
			return
		}
		var be *gitstore.BundleError
		if errors.As(ev.Err, &be) {
			m.refused.WithLabelValues(ev.Folder).Inc()
		} else {
			m.fetchFailed.WithLabelValues(ev.Folder).Inc()
		}
	}
}

var (
	descConnected = prometheus.NewDesc("peersync_connected_devices", "Peers connected now.", nil, nil)
	descPeers     = prometheus.NewDesc("peersync_peers", "Devices in the sync table.", nil, nil)
	descFolders   = prometheus.NewDesc("peersync_folders", "Shared folders, by state (syncing or stopped).", []string{"state"}, nil)
	descFetching  = prometheus.NewDesc("peersync_bundle_bytes_receiving", "Bytes of bundles being received now (resumed parts included).", nil, nil)
	descTURN      = prometheus.NewDesc("peersync_turn_allocations", "TURN relay allocations open now.", nil, nil)
	descTransfers = prometheus.NewDesc("peersync_transfers", "Bundle transfers with peers under way, by direction (send, receive).", []string{"direction"}, nil)
	descXferBytes = prometheus.NewDesc("peersync_transfer_bytes", "Bytes done of the bundle transfers under way, by direction.", []string{"direction"}, nil)
	descPending   = prometheus.NewDesc("peersync_pending", "Devices asking to connect and folder offers waiting for an answer (`server pending`).", []string{"kind"}, nil)
	descTraffic   = prometheus.NewDesc("peersync_bundle_bytes_total", "Bundle bytes moved with peers since the engine started, by direction (send, receive).", []string{"direction"}, nil)
	descMailbox   = prometheus.NewDesc("peersync_mailbox_bytes", "Bytes of sealed bundles held in the blind mailbox for offline devices (all recipients).", nil, nil)
	descRelayed   = prometheus.NewDesc("peersync_rendezvous_relayed_total", "Rendezvous signaling messages (ICE offers and answers) relayed between devices since the engine started.", nil, nil)
)

// statusCollector reads the gauges from Engine.Status at scrape time.
type statusCollector struct {
	e     *sync.Engine
	relay *relay
}

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConnected
	ch <- descPeers
	ch <- descFolders
	ch <- descFetching
	ch <- descTransfers
	ch <- descXferBytes
	ch <- descPending
	ch <- descTraffic
	ch <- descRelayed
	ch <- descMailbox
	if c.relay != nil {
		ch <- descTURN
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Status()
	var connected, stopped, receiving float64
	transfers, xferBytes := map[string]float64{"send": 0, "receive": 0}, map[string]float64{"send": 0, "receive": 0}
	for _, p := range st.Peers {
		if p.Connected {
			connected++
		}
		for _, pr := range p.Progress {
			transfers[pr.Direction]++
			xferBytes[pr.Direction] += float64(pr.Bytes)
		}
	}
	for _, f := range st.Folders {
		if f.Stopped != "" {
			stopped++
		}
		for _, fs := range f.Fetches {
			if fs.State == "receiving" || fs.State == "applying" {
				receiving += float64(fs.Received)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(len(st.Peers)))
	ch <- prometheus.MustNewConstMetric(descFolders, prometheus.GaugeValue, float64(len(st.Folders))-stopped, "syncing")
	ch <- prometheus.MustNewConstMetric(descFolders, prometheus.GaugeValue, stopped, "stopped")
	ch <- prometheus.MustNewConstMetric(descFetching, prometheus.GaugeValue, receiving)
	for dir, n := range transfers {
		ch <- prometheus.MustNewConstMetric(descTransfers, prometheus.GaugeValue, n, dir)
		ch <- prometheus.MustNewConstMetric(descXferBytes, prometheus.GaugeValue, xferBytes[dir], dir)
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(len(st.Pending.Devices)), "device")
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(len(st.Pending.Folders)), "folder")
	tr := c.e.Traffic()
	ch <- prometheus.MustNewConstMetric(descTraffic, prometheus.CounterValue, float64(tr.BundleBytesIn), "receive")
	ch <- prometheus.MustNewConstMetric(descTraffic, prometheus.CounterValue, float64(tr.BundleBytesOut), "send")
	ch <- prometheus.MustNewConstMetric(descRelayed, prometheus.CounterValue, float64(tr.OffersRelayed))
	ch <- prometheus.MustNewConstMetric(descMailbox, prometheus.GaugeValue, float64(c.e.MailboxBytes()))
	if c.relay != nil {
		ch <- prometheus.MustNewConstMetric(descTURN, prometheus.GaugeValue, float64(c.relay.srv.AllocationCount()))
	}
}

// startMetrics serves /metrics on addr (plain HTTP: bind it to loopback or
// a private network) until stop.
func startMetrics(env cli.Env, addr string, m *serverMetrics) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(env.Stdout, "metrics on http://%s/metrics\n", ln.Addr())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Log.Error("metrics stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}
