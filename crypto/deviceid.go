package crypto

import "github.com/peersync/peersync/deviceid"

// DeviceID identifies a device: its Ed25519 public key. It is
// deviceid.ID (an alias, so the two are the same type), kept in the leaf
// package deviceid so that layers which must not import crypto, such as
// discovery, can name devices too. Identity.DeviceID derives it;
// ParsePeer also accepts an OpenSSH public-key line.
type DeviceID = deviceid.ID

// ErrInvalidDeviceID is returned (wrapped) when a string is not a valid
// DeviceID; it is deviceid.ErrInvalid.
var ErrInvalidDeviceID = deviceid.ErrInvalid

// ParseDeviceID parses the printed form of a DeviceID; see deviceid.Parse.
func ParseDeviceID(s string) (DeviceID, error) { return deviceid.Parse(s) }
