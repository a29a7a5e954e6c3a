package discovery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/peersync/peersync/deviceid"
)

// protocolVersion is the value of the "v" TXT key we announce and accept.
const protocolVersion = "1"

// txtInfo is what a peersync TXT record says.
type txtInfo struct {
	Device deviceid.ID
	Port   uint16 // 0 if the record had no usable "port" key
}

// errBadTXT is wrapped by every parseTXT error.
var errBadTXT = errors.New("bad peersync TXT record")

// encodeTXT returns the TXT strings we announce: exactly id, v and port, in
// that order. Nothing else about the device (folders, peers) is announced.
func encodeTXT(id deviceid.ID, port int) []string {
	return []string{
		"id=" + id.String(),
		"v=" + protocolVersion,
		"port=" + strconv.Itoa(port),
	}
}

// parseTXT reads a peersync TXT record following RFC 6763 section 6: keys
// are case-insensitive, only the first occurrence of a key counts, unknown
// keys are ignored (so later versions can add some) and empty strings are
// skipped. It needs a valid "id" and "v=1"; "port" is optional (the SRV
// record carries the port too) but must be a valid port if present.
func parseTXT(txt []string) (txtInfo, error) {
	var info txtInfo
	seen := map[string]bool{}
	var haveID, haveV bool
	for _, s := range txt {
		if s == "" {
			continue
		}
		key, val, hasVal := strings.Cut(s, "=")
		key = strings.ToLower(key)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		switch key {
		case "id":
			id, err := deviceid.Parse(val)
			if err != nil || !hasVal {
				return txtInfo{}, fmt.Errorf("%w: id %q: %v", errBadTXT, val, err)
			}
			if id.IsZero() {
				return txtInfo{}, fmt.Errorf("%w: zero device id", errBadTXT)
			}
			info.Device, haveID = id, true
		case "v":
			if val != protocolVersion {
				return txtInfo{}, fmt.Errorf("%w: unsupported version %q", errBadTXT, val)
			}
			haveV = true
		case "port":
			p, err := strconv.ParseUint(val, 10, 16)
			if err != nil || p == 0 {
				return txtInfo{}, fmt.Errorf("%w: port %q", errBadTXT, val)
			}
			info.Port = uint16(p)
		}
	}
	if !haveID {
		return txtInfo{}, fmt.Errorf("%w: no id", errBadTXT)
	}
	if !haveV {
		return txtInfo{}, fmt.Errorf("%w: no version", errBadTXT)
	}
	return info, nil
}
