// Package deviceid holds the name of a peersync device: ID, the device's
// 32-byte Ed25519 public key, with its printed form and parser.
//
// It is a leaf (it imports only the standard library) so that every layer
// can name devices without importing another layer: crypto derives an ID
// from an identity (crypto.DeviceID is this type), transport authenticates
// one, discovery announces and browses for them, sync keeps its table by
// them. See docs/design.md, "Layers".
//
//	id, err := deviceid.Parse("MFZWI3D-…") // what a user typed or a peer announced
//	fmt.Println(id)                        // the printed form
//	fmt.Println(id.Short())                // "MFZWI3D": logs, conflict file names
//
// # Printed form
//
// The printed form is the 52-character RFC 4648 base32 encoding of the key,
// cut into four groups of 13 characters, each followed by one Luhn mod 32
// check character (56 characters), shown in dash-separated groups of seven:
//
//	AAAAAAA-AAAAAAC-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA (illustrative)
//
// This is the layout of Syncthing's device IDs. Parse ignores dashes and
// spaces, accepts lower case, reads 0/1/8 as O/I/B, and rejects any group
// whose check character does not match, so a single mistyped character, and
// most swapped neighbours, are caught instead of silently naming another
// device.
package deviceid
