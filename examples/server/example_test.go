package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peersync/peersync/internal/cli"
)

// The server shares the desktop's commands: init prints its DeviceID, which
// the user's devices add as a peer.
func Example() {
	home, _ := os.MkdirTemp("", "server-example")
	defer os.RemoveAll(home)
	var out strings.Builder
	_ = cli.Run(context.Background(), program, []string{"--home", home, "init", "--name", "hosted"}, &out, io.Discard)
	fmt.Println(len(strings.TrimSpace(out.String())))
	// Output: 63
}
