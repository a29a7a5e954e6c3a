package sync

import (
	"encoding/json"
	"fmt"

	"github.com/peersync/peersync/gitstore"
)

// Protocol messages. Every stream starts with one JSON frame (transport
// framing: 4-byte big-endian length, then the payload) whose Type says what
// the stream is for:
//
//   - "control": the opener's long-lived stream of announcements. Each side
//     opens exactly one per connection and sends "head" frames on it.
//   - "want": a request for a bundle. The answer on the same stream is one
//     bundleHeader frame, then exactly Size bytes of git bundle.
//   - "rendezvous": a device asks the hosted server to relay its ICE
//     signaling; the rest of the stream is transport's rendezvous protocol.
const (
	msgControl    = "control"
	msgHead       = "head"
	msgWant       = "want"
	msgRendezvous = "rendezvous" // the rest of the stream is transport's rendezvous protocol
)

// maxSince bounds how many "since" hashes a want may carry.
const maxSince = 64

// message is the one JSON shape of every control frame.
type message struct {
	Type   string          `json:"type"`
	Name   string          `json:"name,omitempty"`   // control: sender's device name
	Folder string          `json:"folder,omitempty"` // head, want
	Head   gitstore.Hash   `json:"head,omitempty"`   // head: the sender's head
	Since  []gitstore.Hash `json:"since,omitempty"`  // want: commits the asker has
}

// bundleHeader precedes a bundle on a want stream.
type bundleHeader struct {
	Size    int64  `json:"size"`              // bytes of bundle that follow
	Nothing bool   `json:"nothing,omitempty"` // the asker already has everything
	Error   string `json:"error,omitempty"`   // refused; no bytes follow
}

// decodeMessage parses and validates one frame from a peer. Anything
// malformed is an error; the caller drops the stream.
func decodeMessage(b []byte) (message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("sync: malformed message: %w", err)
	}
	switch m.Type {
	case msgRendezvous:
	case msgControl:
		if len(m.Name) > 256 {
			return m, fmt.Errorf("sync: device name of %d bytes is too long", len(m.Name))
		}
	case msgHead, msgWant:
		if err := ValidFolderID(m.Folder); err != nil {
			return m, err
		}
		if len(m.Since) > maxSince {
			return m, fmt.Errorf("sync: want with %d since-hashes (max %d)", len(m.Since), maxSince)
		}
	default:
		return m, fmt.Errorf("sync: unknown message type %q", m.Type)
	}
	return m, nil
}

func decodeBundleHeader(b []byte) (bundleHeader, error) {
	var h bundleHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("sync: malformed bundle header: %w", err)
	}
	if h.Size < 0 {
		return h, fmt.Errorf("sync: negative bundle size %d", h.Size)
	}
	return h, nil
}
