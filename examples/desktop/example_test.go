package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peersync/peersync/internal/cli"
)

// The CLI as a script sees it: init prints the new DeviceID, id prints it
// again with the ssh-ed25519 public-key line.
func Example() {
	home, _ := os.MkdirTemp("", "desktop-example")
	defer os.RemoveAll(home)

	var out strings.Builder
	_ = cli.Run(context.Background(), program, []string{"--home", home, "init", "--name", "laptop"}, &out, io.Discard)
	id := strings.TrimSpace(out.String())
	out.Reset()
	_ = cli.Run(context.Background(), program, []string{"--home", home, "id"}, &out, io.Discard)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	fmt.Println(lines[0] == id, len(id), strings.Fields(lines[1])[0])
	// Output: true 63 ssh-ed25519
}
