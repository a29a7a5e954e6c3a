package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/httpapi"
	"github.com/peersync/peersync/sync"
)

// Serve the API of an Engine on loopback and call it with the Client.
func Example() {
	home, _ := os.MkdirTemp("", "httpapi-example")
	defer os.RemoveAll(home)
	id, _, _ := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	key, _ := httpapi.LoadOrCreateKey(home)
	api := httpapi.New(e, httpapi.Options{Key: key, ConsumeEvents: true})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	defer api.Close()

	ctx := context.Background()
	c := &httpapi.Client{BaseURL: "http://" + ln.Addr().String(), Key: key}
	_ = c.SetName(ctx, "laptop")
	dev, _ := c.Device(ctx)
	fmt.Println(dev.Name, dev.Device == e.DeviceID())

	_, err = (&httpapi.Client{BaseURL: c.BaseURL, Key: "wrong"}).Status(ctx)
	fmt.Println(err)
	// Output:
	// laptop true
	// missing or wrong API key: send X-API-Key (the line in <home>/apikey) (HTTP 401)
}
