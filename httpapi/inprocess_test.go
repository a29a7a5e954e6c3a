package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/sync"
)

// TestInProcessClient: Server.Client reaches the handler without a socket,
// with the same answers, errors and event stream.
func TestInProcessClient(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.api.Client()
	ctx := context.Background()
	require.NoError(t, c.SetName(ctx, "inproc"))
	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "inproc", st.Name)
	_, err = c.History(ctx, "nope", "", 0)
	var se *StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusNotFound, se.Code)

	wrong := *c
	wrong.Key = "wrong"
	_, err = wrong.Status(ctx)
	require.True(t, errors.As(err, &se))
	assert.Equal(t, http.StatusUnauthorized, se.Code)

	f.api.Publish(sync.Event{Kind: sync.EventError, Folder: "x"})
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan EventJSON, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.Events(ectx, 0, func(ev EventJSON) error { got <- ev; return errStop })
	}()
	ev := <-got
	assert.Equal(t, "x", ev.Folder)
	assert.ErrorIs(t, <-done, errStop)
}
