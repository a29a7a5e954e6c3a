// Package crypto holds a peersync device's identity and everything derived
// from it: the DeviceID that names the device, the identity file on disk,
// and the TLS certificate that proves the identity to peers.
//
// The common path:
//
//	id, created, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
//	fmt.Println(id.DeviceID())      // tell this to your other devices
//	fmt.Println(id.AuthorizedKey()) // or this: "ssh-ed25519 AAAA…"
//
//	peer, err := crypto.ParsePeer(userInput) // a DeviceID or an ssh-ed25519 line
//	cert, err := id.TLSCertificate()         // for transport's mutual TLS
//
// # DeviceID
//
// A device's identity is an Ed25519 key pair, and its DeviceID is the
// 32-byte public key itself (not a hash of it, as in Syncthing). So a
// DeviceID alone lets a peer authenticate the device in a TLS handshake and
// seal data to it, with no key exchange beforehand.
//
// The printed form is the 52-character RFC 4648 base32 encoding of the key,
// cut into four groups of 13 characters, each followed by one Luhn mod 32
// check character (56 characters), shown in dash-separated groups of seven:
//
//	AAAAAAA-AAAAAAC-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA (illustrative)
//
// This is the layout of Syncthing's device IDs. ParseDeviceID ignores dashes
// and spaces, accepts lower case, reads 0/1/8 as O/I/B, and rejects any
// group whose check character does not match, so a single mistyped
// character, and most swapped neighbours, are caught instead of silently
// naming another device.
//
// # Identity file
//
// The private key is stored as an unencrypted OpenSSH private key
// ("-----BEGIN OPENSSH PRIVATE KEY-----") with mode 0600, written atomically.
// Standard tools read it: `ssh-keygen -y -f identity` prints the same
// public-key line as Identity.AuthorizedKey, and `age -d -i identity` opens
// data sealed to the device.
//
// # TLS
//
// Identity.TLSCertificate makes a self-signed X.509 certificate carrying the
// Ed25519 key. Peers run TLS 1.3 with mutual authentication and do not
// consult any certificate authority: VerifyPeerCertificate extracts the
// DeviceID from the presented certificate and asks the caller whether that
// device is in its sync table. The handshake itself proves the peer holds
// the private key.
package crypto
