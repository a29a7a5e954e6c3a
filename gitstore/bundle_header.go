package gitstore

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
)

// Hard caps on a bundle header read from a peer.
const (
	maxHeaderBytes = 1 << 20
	maxHeaderLines = 1000
)

const (
	bundleV2Signature = "# v2 git bundle"
	bundleV3Signature = "# v3 git bundle"
)

// bundleHeader is the text part of a git bundle, before the packfile.
type bundleHeader struct {
	prereqs []plumbing.Hash
	refs    []bundleRef
}

type bundleRef struct {
	hash plumbing.Hash
	name string
}

// readBundleHeader parses a v2 (or v3 with SHA-1) bundle header up to and
// including the blank line, leaving r at the start of the packfile. It
// enforces maxHeaderBytes and maxHeaderLines and rejects anything malformed.
func readBundleHeader(r *bufio.Reader) (*bundleHeader, error) {
	var (
		h     bundleHeader
		total int
	)
	readLine := func() (string, error) {
		var line []byte
		for {
			frag, err := r.ReadSlice('\n')
			total += len(frag)
			if total > maxHeaderBytes {
				return "", fmt.Errorf("header larger than %d bytes", maxHeaderBytes)
			}
			line = append(line, frag...)
			if err == nil {
				return string(line[:len(line)-1]), nil
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				return "", errors.New("truncated header")
			}
			return "", err
		}
	}
	sig, err := readLine()
	if err != nil {
		return nil, err
	}
	v3 := false
	switch sig {
	case bundleV2Signature:
	case bundleV3Signature:
		v3 = true
	default:
		return nil, fmt.Errorf("not a v2 git bundle (signature %q)", truncate(sig, 40))
	}
	for n := 1; ; n++ {
		if n > maxHeaderLines {
			return nil, fmt.Errorf("header has more than %d lines", maxHeaderLines)
		}
		line, err := readLine()
		if err != nil {
			return nil, err
		}
		switch {
		case line == "":
			if len(h.refs) == 0 {
				return nil, errors.New("bundle has no refs")
			}
			return &h, nil
		case line[0] == '@':
			if !v3 || (line != "@object-format=sha1" && line != "@object-format=sha1\r") {
				return nil, fmt.Errorf("unsupported capability %q", truncate(line, 60))
			}
		case line[0] == '-':
			if len(h.refs) > 0 {
				return nil, errors.New("prerequisite after a ref")
			}
			hash, rest, err := parseHexPrefix(line[1:])
			if err != nil {
				return nil, fmt.Errorf("prerequisite line %d: %w", n+1, err)
			}
			if rest != "" && rest[0] != ' ' {
				return nil, fmt.Errorf("prerequisite line %d: malformed", n+1)
			}
			h.prereqs = append(h.prereqs, hash)
		default:
			hash, rest, err := parseHexPrefix(line)
			if err != nil {
				return nil, fmt.Errorf("ref line %d: %w", n+1, err)
			}
			if len(rest) < 2 || rest[0] != ' ' {
				return nil, fmt.Errorf("ref line %d: malformed", n+1)
			}
			name := rest[1:]
			if bytes.ContainsAny([]byte(name), " \t\x00") {
				return nil, fmt.Errorf("ref line %d: malformed ref name %q", n+1, truncate(name, 60))
			}
			h.refs = append(h.refs, bundleRef{hash: hash, name: name})
		}
	}
}

func parseHexPrefix(s string) (plumbing.Hash, string, error) {
	var h plumbing.Hash
	if len(s) < 40 {
		return h, "", errors.New("short object name")
	}
	for i := 0; i < 40; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return h, "", errors.New("bad object name")
		}
	}
	if _, err := hex.Decode(h[:], []byte(s[:40])); err != nil {
		return h, "", err
	}
	return h, s[40:], nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
