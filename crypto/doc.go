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
// seal data to it, with no key exchange beforehand. The type, its printed
// form (base32 with Luhn check characters) and its parser live in the leaf
// package deviceid (crypto.DeviceID is an alias of deviceid.ID), so that
// layers that must not import crypto can name devices too.
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
// DeviceID from the presented certificate and asks the caller whether it
// accepts that device. The handshake itself proves the peer holds
// the private key.
//
// # Sealing
//
// Seal encrypts a stream so that only the named devices can open it, and
// signs it so that they know which device sealed it. It is for data at rest
// in places we do not trust: a USB stick, mail, a server's mailbox.
//
//	w, err := crypto.Seal(ctx, file, []crypto.DeviceID{peer}, id)
//	_, err = io.Copy(w, bundle)
//	err = w.Close() // writes the signature; without it the stream never opens
//
//	r, sender, err := crypto.Open(ctx, file, id)
//	_, err = io.Copy(tmp, r) // err == nil (the reader hit io.EOF) means authentic
//	// only now: check that sender is a known peer, then use tmp
//
// Open cannot know whether the data is authentic before its end, because
// the signature is at the end (so that Seal never buffers). The sender it
// returns is a claim until the reader has returned io.EOF; where a good
// stream ends with io.EOF, a forged, modified or truncated one ends with an
// error wrapping ErrBadSignature, ErrCorrupt or ErrTruncated instead, never
// with a silent short read. Callers that must not touch the data before it
// is verified use OpenVerified, which decrypts into a temporary file and
// returns it only after the signature checks out.
//
// Memory is bounded whatever the length: age encrypts in 64 KiB chunks and
// the signature hash is computed as the data streams by. Sealing and
// opening 1 GiB through a pipe in one process peaks at about 20 MiB of RSS,
// half of it the test binary itself (BenchmarkSealOpen).
//
// ctx governs the whole stream, as an http.Request's context does: once it
// is done, Write, Close and Read return an error wrapping ctx.Err().
//
// # Sealed format
//
// A sealed stream is a standard binary (unarmored) age v1 file,
// https://age-encryption.org/v1, with one ssh-ed25519 recipient stanza per
// recipient: the stanza `age -R` writes for the recipient's OpenSSH
// public-key line (AuthorizedKey). agessh derives the X25519 key from the
// Ed25519 DeviceID, so the identity file opens it:
//
//	age -d -i identity bundle.sealed
//
// age is anonymous: anyone who knows a DeviceID can seal to it, and every
// recipient holds the file key and could write a new age file. So the age
// payload is not the data itself but a signed envelope:
//
//	peersync-sealed/1\n
//	from <sender DeviceID>\n
//	to <recipient DeviceID>\n      one line per recipient, sorted by key bytes, no duplicates
//	\n
//	<data>
//	<length>                       8 bytes, big-endian: the number of data bytes
//	<signature>                    64 bytes
//
// DeviceIDs are in their canonical printed form (63 characters), so the
// header is 88 + 67 × recipients bytes. The signature is Ed25519ph (RFC
// 8032: Ed25519 over a SHA-512 prehash) with the context string
// "peersync-sealed/1", made with the sender's key over
//
//	SHA-512(header || data || length)
//
// where header is everything up to and including the blank line. At most
// MaxSealRecipients recipients are allowed. Open rejects any other layout:
// lines not in exactly this form, recipients out of order, a payload
// shorter than header and trailer.
//
// Why it is built this way:
//
//   - The file is a plain age file, not a signature block in front of one,
//     so `age -d -i identity` opens it directly with no stripping. The
//     price: what the age CLI prints is the envelope, not the bare data.
//     To recover the data by hand (unverified!) with one recipient:
//     `age -d -i identity f.sealed | tail -c +156 | head -c -72`
//     (tail's offset is the header length plus one).
//   - The signature covers the recipient list, and Open refuses (with
//     ErrNotRecipient) an envelope whose list does not name the opening
//     device. Without that, a recipient could decrypt a stream and re-seal
//     it to a third device, which would take it as sent to it by the
//     original sender (surreptitious forwarding). Changing the list breaks
//     the signature.
//   - The length and signature trail the data at a fixed size, so Seal
//     hashes as it goes and never buffers; Open holds back the last 72
//     bytes it has read until EOF and treats them as the trailer. age
//     already detects a file cut short (its last chunk is marked), so the
//     length mainly catches a recipient re-sealing a shortened envelope,
//     and lets that be reported as ErrTruncated.
//   - Ed25519ph with a context string keeps these signatures apart from
//     anything else the identity key signs (TLS handshakes, ssh).
//   - One key serves both Ed25519 signing and, converted, X25519 for age.
//     That is what makes `age -d -i identity` work, and is how age's own
//     ssh-ed25519 support uses keys.
//
// Not covered: a sealed stream carries no time or sequence number, so an
// old stream can be delivered again, and the layer that applies the data
// must cope with that (a bundle names its prerequisites and refs, so an old
// one adds no history that is not already there). Any recipient can pass
// the stream on to another recipient on the list, which is what the sender
// asked for.
//
// Errors: Open and the reader it returns report ErrNotRecipient (not
// sealed to this device), ErrBadSignature (not signed by the claimed
// sender), ErrTruncated, or ErrCorrupt (malformed, or the ciphertext was
// modified; a cut inside an age chunk also shows as ErrCorrupt, because age
// cannot tell it from a modification). IsSealed recognises a sealed stream
// from its first SealedPrefixLen bytes, the age header line; a plain age
// file made by other tools is recognised too, and Open rejects it with
// ErrCorrupt.
package crypto
