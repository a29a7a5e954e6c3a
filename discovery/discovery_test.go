package discovery

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no device", Config{Port: 1, Announce: true}, "Device"},
		{"announce without port", Config{Device: self, Announce: true}, "Port"},
		{"port too big", Config{Device: self, Port: 70000, Announce: true}, "Port"},
		{"unusable host name", Config{Device: self, HostName: "..."}, "HostName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	cfg := Config{Device: self, Interfaces: []net.Interface{eth0}}
	d, err := New(cfg)
	require.NoError(t, err, "browse only needs no port")
	d.ifaces[0].Name = "changed"
	assert.Equal(t, "eth0", cfg.Interfaces[0].Name, "New does not share the caller's slice")
	assert.Contains(t, d.ann.instance, " ("+self.Short()+")."+serviceName, "empty Name uses the host name")
}

// TestRunAndClose runs the whole loop on an ephemeral port with no
// interface joined, so nothing leaves the process.
func TestRunAndClose(t *testing.T) {
	d, err := New(Config{Device: self, Port: 1, Announce: true, Interfaces: []net.Interface{}})
	require.NoError(t, err)
	d.seams.mdnsPort = 0
	require.NotNil(t, d.ifaces, "no interface joined: nothing leaves the process")
	// Run's loop reads the clock on its first pass, once its sockets are
	// open: that is the signal that Run is running.
	looping := make(chan struct{})
	var once sync.Once
	d.now = func() time.Time {
		once.Do(func() { close(looping) })
		return time.Now()
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background()) }()
	<-looping
	require.NoError(t, d.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled, "Run returns the wrapped context error")
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	_, open := <-d.Updates()
	assert.False(t, open, "Updates is closed after Run returns")
	assert.ErrorIs(t, d.Close(), ErrClosed)
	assert.ErrorIs(t, d.Run(context.Background()), ErrClosed)
	goleak.VerifyNone(t)
}

func TestRunContextCancel(t *testing.T) {
	d, err := New(Config{Device: self, Interfaces: []net.Interface{}})
	require.NoError(t, err)
	d.seams.mdnsPort = 0
	require.NotNil(t, d.ifaces)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = d.Run(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, d.Run(ctx), ErrClosed, "Run runs once")
	assert.NoError(t, d.Close())
	goleak.VerifyNone(t)
}

func TestCloseWithoutRun(t *testing.T) {
	d, err := New(Config{Device: self})
	require.NoError(t, err)
	require.NoError(t, d.Close())
	_, open := <-d.Updates()
	assert.False(t, open)
	assert.ErrorIs(t, d.Run(context.Background()), ErrClosed)
	assert.ErrorIs(t, d.Close(), ErrClosed)
}
