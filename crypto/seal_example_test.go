package crypto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/peersync/peersync/crypto"
)

// A laptop seals a bundle for the desktop, which is offline; the file
// travels on a USB stick. The desktop opens it, reads it to the end (only
// then is the sender verified), and checks the sender is a device it knows.
func ExampleSeal() {
	ctx := context.Background()
	laptop, _ := crypto.GenerateIdentity(nil)
	desktop, _ := crypto.GenerateIdentity(nil)
	known := map[crypto.DeviceID]string{laptop.DeviceID(): "laptop"}

	var stick bytes.Buffer
	w, err := crypto.Seal(ctx, &stick, []crypto.DeviceID{desktop.DeviceID()}, laptop)
	if err != nil {
		fmt.Println(err)
		return
	}
	io.WriteString(w, "# v2 git bundle\n...")
	if err := w.Close(); err != nil { // Close writes the signature
		fmt.Println(err)
		return
	}
	sealed := stick.Bytes()
	fmt.Println("recognised as sealed:", crypto.IsSealed(sealed))

	r, sender, err := crypto.Open(ctx, bytes.NewReader(sealed), desktop)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, err := io.ReadAll(r) // nil error: the signature verified at EOF
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("from %s: %q\n", known[sender], data)

	// Anyone else is turned away, and a modified file never reads cleanly.
	stranger, _ := crypto.GenerateIdentity(nil)
	_, _, err = crypto.Open(ctx, bytes.NewReader(sealed), stranger)
	fmt.Println("stranger:", errors.Is(err, crypto.ErrNotRecipient))

	sealed[len(sealed)-5] ^= 1
	r, _, err = crypto.Open(ctx, bytes.NewReader(sealed), desktop)
	if err == nil {
		_, err = io.ReadAll(r)
	}
	fmt.Println("modified:", errors.Is(err, crypto.ErrCorrupt))
	// Output:
	// recognised as sealed: true
	// from laptop: "# v2 git bundle\n..."
	// stranger: true
	// modified: true
}
