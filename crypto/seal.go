package crypto

import (
	"bufio"
	"bytes"
	"context"
	stdcrypto "crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// Errors returned (wrapped) by Open, OpenVerified and the reader Open
// returns. Callers branch on them with errors.Is.
var (
	// ErrNotRecipient: the stream is not sealed to this device (no age
	// recipient stanza matches the identity), or its signed recipient list
	// does not name this device (someone re-sealed content that was
	// addressed to other devices).
	ErrNotRecipient = errors.New("not sealed to this device")

	// ErrBadSignature: the sender's signature does not verify, so the
	// stream was not sealed by the device it names (or its content was
	// altered by another recipient).
	ErrBadSignature = errors.New("sender signature does not verify")

	// ErrTruncated: the stream ends early. A stream cut inside an age chunk
	// is indistinguishable from a modified one and reports ErrCorrupt.
	ErrTruncated = errors.New("sealed stream is truncated")

	// ErrCorrupt: the stream is not a well-formed sealed stream, or its
	// ciphertext was modified (age authentication failed). A plain age file
	// that is not a peersync envelope also reports ErrCorrupt.
	ErrCorrupt = errors.New("sealed stream is corrupt or was modified")
)

// SealedPrefixLen is how many leading bytes IsSealed needs to recognise a
// sealed stream.
const SealedPrefixLen = 22 // len("age-encryption.org/v1\n")

// MaxSealRecipients is the largest number of distinct recipients Seal
// accepts and Open parses.
const MaxSealRecipients = 256

const (
	ageIntro = "age-encryption.org/v1\n"

	envMagic    = "peersync-sealed/1\n"
	envFrom     = "from "
	envTo       = "to "
	sigContext  = "peersync-sealed/1" // Ed25519ph context string (RFC 8032)
	trailerLen  = 8 + ed25519.SignatureSize
	idTextLen   = 63 // len(DeviceID.String())
	maxEnvLine  = len(envFrom) + idTextLen + 1
	openBufSize = 64 << 10 // one age chunk
)

// IsSealed reports whether prefix, the first bytes of some input, starts
// like a sealed stream: the binary age header "age-encryption.org/v1\n".
// It needs at least SealedPrefixLen bytes and reports false for fewer. A
// plain age file made by other tools is recognised too; Open then rejects
// it with ErrCorrupt.
func IsSealed(prefix []byte) bool {
	return bytes.HasPrefix(prefix, []byte(ageIntro))
}

// Seal returns a writer that seals everything written to it to the devices
// in to, signed by from, and writes the sealed stream to dst. The stream is
// an age file (see the package documentation, "Sealing"), so each recipient
// can also open it with `age -d -i identity`.
//
// Close must be called to finish the stream: it writes the signature
// trailer and the final age chunk. Close does not close dst. Memory use is
// bounded (one 64 KiB age chunk), whatever the stream's length.
//
// Duplicate recipients are ignored; the order of to does not matter. ctx
// governs the whole stream: once it is done, Write and Close return an
// error wrapping ctx.Err() and the stream is left unfinished (it will not
// open).
func Seal(ctx context.Context, dst io.Writer, to []DeviceID, from *Identity) (io.WriteCloser, error) {
	if from == nil {
		return nil, errors.New("crypto: seal: no sender identity")
	}
	w, err := sealWith(ctx, dst, to, from.id, from.key)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// sealWith is Seal with the claimed sender and the signing key separated,
// so tests can forge a stream whose signature is not the sender's.
func sealWith(ctx context.Context, dst io.Writer, to []DeviceID, from DeviceID, key ed25519.PrivateKey) (*sealWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crypto: seal: %w", err)
	}
	to = canonicalRecipients(to)
	if len(to) == 0 {
		return nil, errors.New("crypto: seal: no recipients")
	}
	if len(to) > MaxSealRecipients {
		return nil, fmt.Errorf("crypto: seal: %d recipients, at most %d allowed", len(to), MaxSealRecipients)
	}
	recips := make([]age.Recipient, 0, len(to))
	for _, d := range to {
		if d.IsZero() {
			return nil, errors.New("crypto: seal: zero recipient DeviceID")
		}
		r, err := ageRecipient(d)
		if err != nil {
			return nil, fmt.Errorf("crypto: seal: recipient %s: %w", d, err)
		}
		recips = append(recips, r)
	}
	aw, err := age.Encrypt(dst, recips...)
	if err != nil {
		return nil, fmt.Errorf("crypto: seal: %w", err)
	}
	w := &sealWriter{ctx: ctx, age: aw, h: sha512.New(), key: key}
	hdr := envelopeHeader(from, to)
	w.h.Write(hdr)
	if _, err := aw.Write(hdr); err != nil {
		return nil, fmt.Errorf("crypto: seal: %w", err)
	}
	return w, nil
}

// canonicalRecipients returns to sorted bytewise without duplicates, the
// order in which the envelope lists (and the signature covers) them.
func canonicalRecipients(to []DeviceID) []DeviceID {
	to = slices.Clone(to)
	slices.SortFunc(to, func(a, b DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(to)
}

// ageRecipient is the age ssh-ed25519 recipient for d, the same one
// `age -R` makes from the line AuthorizedKey(d).
func ageRecipient(d DeviceID) (age.Recipient, error) {
	pub, err := ssh.NewPublicKey(d.PublicKey())
	if err != nil {
		return nil, err
	}
	return agessh.NewEd25519Recipient(pub)
}

// envelopeHeader is the envelope's text header: magic, sender, sorted
// recipients, blank line.
func envelopeHeader(from DeviceID, to []DeviceID) []byte {
	var b bytes.Buffer
	b.WriteString(envMagic)
	b.WriteString(envFrom + from.String() + "\n")
	for _, d := range to {
		b.WriteString(envTo + d.String() + "\n")
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// signedDigest finishes the running hash of the envelope header and data
// with the data length, giving the SHA-512 digest that is signed with
// Ed25519ph.
func signedDigest(h hash.Hash, n uint64) []byte {
	h.Write(binary.BigEndian.AppendUint64(nil, n))
	return h.Sum(nil)
}

var sigOptions = &ed25519.Options{Hash: stdcrypto.SHA512, Context: sigContext}

// sealWriter is the writer Seal returns. It is not safe for concurrent use.
type sealWriter struct {
	ctx    context.Context // the stream's lifetime, as for an http.Request
	age    io.WriteCloser
	h      hash.Hash // SHA-512 of header and data so far
	key    ed25519.PrivateKey
	n      uint64 // data bytes written
	err    error  // sticky: the first failure
	closed bool
}

func (w *sealWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("crypto: seal: write after Close: %w", fs.ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("crypto: seal: %w", err)
		return 0, w.err
	}
	n, err := w.age.Write(p)
	w.h.Write(p[:n])
	w.n += uint64(n)
	if err != nil {
		w.err = fmt.Errorf("crypto: seal: %w", err)
		return n, w.err
	}
	return n, nil
}

// Close writes the trailer and finishes the age stream. Later calls return
// the first call's result.
func (w *sealWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("crypto: seal: %w", err)
		return w.err
	}
	sig, err := w.key.Sign(nil, signedDigest(w.h, w.n), sigOptions)
	if err != nil {
		w.err = fmt.Errorf("crypto: seal: sign: %w", err)
		return w.err
	}
	trailer := binary.BigEndian.AppendUint64(make([]byte, 0, trailerLen), w.n)
	trailer = append(trailer, sig...)
	if _, err := w.age.Write(trailer); err != nil {
		w.err = fmt.Errorf("crypto: seal: %w", err)
		return w.err
	}
	if err := w.age.Close(); err != nil {
		w.err = fmt.Errorf("crypto: seal: %w", err)
	}
	return w.err
}

// Open opens a sealed stream with id's key. It reads and checks the age
// header and the envelope header, then returns a reader of the data and
// the sender the stream claims.
//
// The claim is not verified until the reader has returned io.EOF: the
// signature is at the end of the stream. Until then the data is
// unauthenticated as far as the sender is concerned (age guarantees only
// that it was sealed to id by someone). The reader never returns
// silently shortened or altered data as a clean end: where a good stream
// would give io.EOF, a bad one gives an error wrapping ErrBadSignature,
// ErrTruncated or ErrCorrupt, and every later Read returns the same error.
// Callers must read to EOF and must not act on the data, nor trust the
// sender, before they see io.EOF; callers that cannot undo what they did
// with the data use OpenVerified instead.
//
// Open returns errors wrapping ErrNotRecipient (not sealed to id),
// ErrTruncated or ErrCorrupt. Checking that the sender is a device the
// caller knows is the caller's job. ctx governs the whole stream: once it
// is done, Read returns an error wrapping ctx.Err().
func Open(ctx context.Context, src io.Reader, id *Identity) (io.Reader, DeviceID, error) {
	r, err := openReaderFor(ctx, src, id)
	if err != nil {
		return nil, DeviceID{}, err
	}
	return r, r.sender, nil
}

func openReaderFor(ctx context.Context, src io.Reader, id *Identity) (*openReader, error) {
	if id == nil {
		return nil, errors.New("crypto: open: no identity")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("crypto: open: %w", err)
	}
	ident, err := agessh.NewEd25519Identity(id.key)
	if err != nil {
		return nil, fmt.Errorf("crypto: open: %w", err)
	}
	plain, err := age.Decrypt(src, ident)
	if err != nil {
		if _, ok := errors.AsType[*age.NoIdentityMatchError](err); ok {
			return nil, fmt.Errorf("crypto: open: %w (this device is %s): %w", ErrNotRecipient, id.id.Short(), err)
		}
		return nil, classifyAgeError(err)
	}
	return openEnvelope(ctx, plain, id.id)
}

// classifyAgeError maps an error from age's decryption to ours.
func classifyAgeError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("crypto: open: %w: %w", ErrTruncated, err)
	}
	return fmt.Errorf("crypto: open: %w: %w", ErrCorrupt, err)
}

// openEnvelope parses the envelope header from plain (the age payload, or
// what `age -d` prints) and returns the reader of its data. me is the
// device opening it; the zero DeviceID skips the check that the signed
// recipient list names it.
func openEnvelope(ctx context.Context, plain io.Reader, me DeviceID) (*openReader, error) {
	br := bufio.NewReaderSize(plain, openBufSize)
	h := sha512.New()
	line := func(what string) ([]byte, error) {
		l, err := br.ReadSlice('\n')
		if err == nil {
			h.Write(l)
			return l, nil
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("crypto: open: %w: %s line too long", ErrCorrupt, what)
		case err == io.EOF:
			return nil, fmt.Errorf("crypto: open: %w: stream ends in the envelope header, reading %s", ErrTruncated, what)
		}
		return nil, classifyAgeError(err)
	}
	magic, err := br.Peek(len(envMagic))
	if string(magic) != envMagic {
		if err == io.EOF && strings.HasPrefix(envMagic, string(magic)) {
			return nil, fmt.Errorf("crypto: open: %w: stream ends in the envelope magic", ErrTruncated)
		}
		if err != nil && err != io.EOF {
			return nil, classifyAgeError(err)
		}
		return nil, fmt.Errorf("crypto: open: %w: payload does not start with %q (a plain age file?)", ErrCorrupt, envMagic)
	}
	if _, err := line("magic"); err != nil {
		return nil, err
	}
	l, err := line("sender")
	if err != nil {
		return nil, err
	}
	sender, ok := parseEnvLine(l, envFrom)
	if !ok {
		return nil, fmt.Errorf("crypto: open: %w: malformed sender line %q", ErrCorrupt, truncateQuote(l))
	}
	var to []DeviceID
	for {
		l, err := line("recipient")
		if err != nil {
			return nil, err
		}
		if len(l) == 1 { // the blank line
			break
		}
		d, ok := parseEnvLine(l, envTo)
		if !ok {
			return nil, fmt.Errorf("crypto: open: %w: malformed recipient line %q", ErrCorrupt, truncateQuote(l))
		}
		if len(to) > 0 && bytes.Compare(to[len(to)-1][:], d[:]) >= 0 {
			return nil, fmt.Errorf("crypto: open: %w: recipients not in canonical order", ErrCorrupt)
		}
		if len(to) == MaxSealRecipients {
			return nil, fmt.Errorf("crypto: open: %w: more than %d recipients", ErrCorrupt, MaxSealRecipients)
		}
		to = append(to, d)
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("crypto: open: %w: no recipients listed", ErrCorrupt)
	}
	if !me.IsZero() {
		if _, found := slices.BinarySearchFunc(to, me, func(a, b DeviceID) int { return bytes.Compare(a[:], b[:]) }); !found {
			return nil, fmt.Errorf("crypto: open: %w: %s sealed this for other devices and someone re-sealed it to %s", ErrNotRecipient, sender.Short(), me.Short())
		}
	}
	return &openReader{
		ctx:    ctx,
		src:    br,
		h:      h,
		sender: sender,
		buf:    make([]byte, openBufSize+trailerLen),
	}, nil
}

// parseEnvLine parses "<prefix><DeviceID>\n", accepting only the canonical
// printed form of the DeviceID.
func parseEnvLine(l []byte, prefix string) (DeviceID, bool) {
	if len(l) != len(prefix)+idTextLen+1 || !bytes.HasPrefix(l, []byte(prefix)) {
		return DeviceID{}, false
	}
	s := string(l[len(prefix) : len(l)-1])
	d, err := ParseDeviceID(s)
	if err != nil || d.IsZero() || d.String() != s {
		return DeviceID{}, false
	}
	return d, true
}

func truncateQuote(l []byte) string {
	if len(l) > maxEnvLine {
		l = l[:maxEnvLine]
	}
	return string(l)
}

// openReader returns the data of an envelope, holding back the last
// trailerLen bytes it has seen (they may be the trailer) and verifying the
// trailer at the end. It is not safe for concurrent use.
type openReader struct {
	ctx    context.Context // the stream's lifetime, as for an http.Request
	src    io.Reader
	h      hash.Hash // SHA-512 of header and data returned so far
	sender DeviceID
	n      uint64 // data bytes returned
	buf    []byte // backing store of pend
	pend   []byte // read from src, not yet returned; the tail may be the trailer
	srcEOF bool
	err    error // sticky: io.EOF after a verified end, or the failure
}

func (r *openReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		r.err = fmt.Errorf("crypto: open: %w", err)
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if avail := len(r.pend) - trailerLen; avail > 0 {
			n := copy(p, r.pend[:avail])
			r.h.Write(p[:n])
			r.n += uint64(n)
			r.pend = r.pend[n:]
			return n, nil
		}
		if r.srcEOF {
			r.err = r.finish()
			return 0, r.err
		}
		if err := r.fill(); err != nil {
			r.err = err
			return 0, err
		}
	}
}

// fill reads once from src into the free space after pend.
func (r *openReader) fill() error {
	k := copy(r.buf, r.pend)
	n, err := r.src.Read(r.buf[k:])
	r.pend = r.buf[:k+n]
	switch {
	case err == io.EOF:
		r.srcEOF = true
	case err != nil:
		return classifyAgeError(err)
	}
	return nil
}

// finish checks the trailer once src is exhausted: it returns io.EOF for a
// complete, correctly signed stream and the reason otherwise.
func (r *openReader) finish() error {
	if len(r.pend) < trailerLen {
		return fmt.Errorf("crypto: open: %w: stream ends before the signature trailer", ErrTruncated)
	}
	declared := binary.BigEndian.Uint64(r.pend[:8])
	sig := r.pend[8:trailerLen]
	if declared != r.n {
		return fmt.Errorf("crypto: open: %w: trailer declares %d data bytes, stream has %d", ErrTruncated, declared, r.n)
	}
	if err := ed25519.VerifyWithOptions(r.sender.PublicKey(), signedDigest(r.h, r.n), sig, sigOptions); err != nil {
		return fmt.Errorf("crypto: open: %w: not signed by the claimed sender %s", ErrBadSignature, r.sender)
	}
	return io.EOF
}

// OpenVerified opens a sealed stream completely before returning anything:
// it decrypts the data into a temporary file in dir (os.TempDir() if
// empty, created with mode 0600), verifies the signature at the end, and
// only then returns the file, rewound, with the verified sender. Use it
// where the data must not be acted on before it is known to be authentic,
// at the cost of one plaintext copy on disk. Close the returned file to
// remove it. Errors are those of Open and of the reader Open returns; on
// error the temporary file is already removed.
func OpenVerified(ctx context.Context, src io.Reader, id *Identity, dir string) (*VerifiedFile, DeviceID, error) {
	r, sender, err := Open(ctx, src, id)
	if err != nil {
		return nil, DeviceID{}, err
	}
	f, err := os.CreateTemp(dir, "peersync-opened-*")
	if err != nil {
		return nil, DeviceID{}, fmt.Errorf("crypto: open: %w", err)
	}
	fail := func(err error) (*VerifiedFile, DeviceID, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, DeviceID{}, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("crypto: open: %w", err))
	}
	return &VerifiedFile{f: f, size: n}, sender, nil
}

// VerifiedFile is the verified plaintext of a sealed stream, in a temporary
// file that Close removes.
type VerifiedFile struct {
	f      *os.File
	size   int64
	closed bool
}

var (
	_ io.ReadSeekCloser = (*VerifiedFile)(nil)
	_ io.ReaderAt       = (*VerifiedFile)(nil)
)

// Read reads the plaintext.
func (v *VerifiedFile) Read(p []byte) (int, error) { return v.f.Read(p) }

// ReadAt reads the plaintext at off.
func (v *VerifiedFile) ReadAt(p []byte, off int64) (int, error) { return v.f.ReadAt(p, off) }

// Seek sets the offset for the next Read.
func (v *VerifiedFile) Seek(off int64, whence int) (int64, error) { return v.f.Seek(off, whence) }

// Size returns the plaintext length.
func (v *VerifiedFile) Size() int64 { return v.size }

// Name returns the temporary file's path, for tools that need a path. It
// stops existing when Close is called.
func (v *VerifiedFile) Name() string { return v.f.Name() }

// Close closes and removes the temporary file. Later calls return an error
// wrapping fs.ErrClosed.
func (v *VerifiedFile) Close() error {
	if v.closed {
		return fmt.Errorf("crypto: verified file: %w", fs.ErrClosed)
	}
	v.closed = true
	errClose := v.f.Close()
	errRemove := os.Remove(v.f.Name())
	if err := errors.Join(errClose, errRemove); err != nil {
		return fmt.Errorf("crypto: verified file: %w", err)
	}
	return nil
}
