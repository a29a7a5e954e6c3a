package crypto

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sealIdentity is a deterministic identity for tests and fuzzing.
func sealIdentity(tb testing.TB, seed byte) *Identity {
	tb.Helper()
	id, err := GenerateIdentity(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	require.NoError(tb, err)
	return id
}

// testData is n pseudo-random bytes, the same for the same n.
func testData(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sealBytes seals data in pieces of odd sizes, to exercise the streaming
// writer.
func sealBytes(tb testing.TB, data []byte, to []DeviceID, from *Identity) []byte {
	tb.Helper()
	var out bytes.Buffer
	w, err := Seal(context.Background(), &out, to, from)
	require.NoError(tb, err)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1000+len(rest)%7777)
		k, err := w.Write(rest[:n])
		require.NoError(tb, err)
		require.Equal(tb, n, k)
		rest = rest[n:]
	}
	require.NoError(tb, w.Close())
	return out.Bytes()
}

// readAll reads r to the end; err is nil only if r ended with io.EOF.
func readAll(r io.Reader) ([]byte, error) {
	return io.ReadAll(r)
}

// openBytes opens sealed with id and reads it all.
func openBytes(sealed []byte, id *Identity) ([]byte, DeviceID, error) {
	r, sender, err := Open(context.Background(), bytes.NewReader(sealed), id)
	if err != nil {
		return nil, DeviceID{}, err
	}
	data, err := readAll(r)
	return data, sender, err
}

// isOurError reports whether err wraps one of the documented sentinels.
func isOurError(err error) bool {
	for _, e := range []error{ErrNotRecipient, ErrBadSignature, ErrTruncated, ErrCorrupt} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func TestSealRoundTrip(t *testing.T) {
	alice, bob, carol := sealIdentity(t, 1), sealIdentity(t, 2), sealIdentity(t, 3)
	// The age payload is header + data + trailer; hit its 64 KiB chunk
	// boundaries exactly and off by one, as well as the data's.
	hdrLen := len(envelopeHeader(alice.DeviceID(), []DeviceID{bob.DeviceID()}))
	const chunk = 64 << 10
	sizes := []int{0, 1, 71, 72, 73, 1000, chunk - 1, chunk, chunk + 1, 3*chunk + 17, 1<<20 + 5}
	for _, k := range []int{1, 2} {
		b := k*chunk - hdrLen - trailerLen
		sizes = append(sizes, b-1, b, b+1)
	}
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			data := testData(n)
			sealed := sealBytes(t, data, []DeviceID{bob.DeviceID()}, alice)
			assert.True(t, IsSealed(sealed))

			r, sender, err := Open(context.Background(), bytes.NewReader(sealed), bob)
			require.NoError(t, err)
			assert.Equal(t, alice.DeviceID(), sender)
			if n <= 3*chunk+17 {
				// iotest.TestReader reads in many patterns and checks EOF is sticky.
				require.NoError(t, iotest.TestReader(r, data))
			} else {
				got, err := readAll(iotest.HalfReader(r))
				require.NoError(t, err)
				assert.True(t, bytes.Equal(data, got), "data differs")
			}
		})
	}
	t.Run("multiple recipients", func(t *testing.T) {
		data := testData(200_000)
		// Duplicates and order do not matter; the sender may seal to itself.
		to := []DeviceID{carol.DeviceID(), bob.DeviceID(), alice.DeviceID(), bob.DeviceID()}
		sealed := sealBytes(t, data, to, alice)
		for _, id := range []*Identity{alice, bob, carol} {
			got, sender, err := openBytes(sealed, id)
			require.NoError(t, err, "opening as %s", id.DeviceID().Short())
			assert.Equal(t, alice.DeviceID(), sender)
			assert.True(t, bytes.Equal(data, got))
		}
		stranger := sealIdentity(t, 9)
		_, _, err := openBytes(sealed, stranger)
		assert.ErrorIs(t, err, ErrNotRecipient)
	})
}

func TestOpenWrongRecipient(t *testing.T) {
	alice, bob, eve := sealIdentity(t, 1), sealIdentity(t, 2), sealIdentity(t, 5)
	sealed := sealBytes(t, []byte("for bob only"), []DeviceID{bob.DeviceID()}, alice)
	r, _, err := Open(context.Background(), bytes.NewReader(sealed), eve)
	require.Error(t, err)
	assert.Nil(t, r)
	assert.ErrorIs(t, err, ErrNotRecipient)
	var nim *age.NoIdentityMatchError
	assert.ErrorAs(t, err, &nim, "age's error stays reachable")
	// The sender cannot open it either unless it sealed to itself.
	_, _, err = openBytes(sealed, alice)
	assert.ErrorIs(t, err, ErrNotRecipient)
}

func TestOpenForgedSender(t *testing.T) {
	alice, bob, mallory := sealIdentity(t, 1), sealIdentity(t, 2), sealIdentity(t, 6)
	for _, n := range []int{0, 10, 100_000} {
		// Mallory claims to be Alice but can only sign with her own key.
		var out bytes.Buffer
		w, err := sealWith(context.Background(), &out, []DeviceID{bob.DeviceID()}, alice.DeviceID(), mallory.key)
		require.NoError(t, err)
		_, err = w.Write(testData(n))
		require.NoError(t, err)
		require.NoError(t, w.Close())

		r, claimed, err := Open(context.Background(), bytes.NewReader(out.Bytes()), bob)
		require.NoError(t, err, "the claim is only checked at the end")
		assert.Equal(t, alice.DeviceID(), claimed)
		_, err = readAll(r)
		assert.ErrorIs(t, err, ErrBadSignature, "size %d", n)
		_, err = r.Read(make([]byte, 10))
		assert.ErrorIs(t, err, ErrBadSignature, "the error is sticky")
	}
}

// envelopeOf decrypts sealed with id's key and returns the raw age payload
// (the envelope), as `age -d` would print it.
func envelopeOf(t testing.TB, sealed []byte, id *Identity) []byte {
	t.Helper()
	ident, err := agessh.NewEd25519Identity(id.key)
	require.NoError(t, err)
	r, err := age.Decrypt(bytes.NewReader(sealed), ident)
	require.NoError(t, err)
	env, err := io.ReadAll(r)
	require.NoError(t, err)
	return env
}

// ageSeal encrypts payload with plain age to the given devices, as a
// recipient who re-seals an envelope would.
func ageSeal(t *testing.T, payload []byte, to ...DeviceID) []byte {
	t.Helper()
	var out bytes.Buffer
	var recips []age.Recipient
	for _, d := range to {
		r, err := ageRecipient(d)
		require.NoError(t, err)
		recips = append(recips, r)
	}
	w, err := age.Encrypt(&out, recips...)
	require.NoError(t, err)
	_, err = w.Write(payload)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return out.Bytes()
}

// A recipient can decrypt the envelope and re-encrypt it with age, but it
// cannot make the result pass as something the sender sent to someone else.
func TestOpenResealedByRecipient(t *testing.T) {
	alice, bob, carol := sealIdentity(t, 1), sealIdentity(t, 2), sealIdentity(t, 3)
	data := testData(100_000)
	env := envelopeOf(t, sealBytes(t, data, []DeviceID{bob.DeviceID()}, alice), bob)

	t.Run("forwarded unchanged", func(t *testing.T) {
		_, _, err := openBytes(ageSeal(t, env, carol.DeviceID()), carol)
		assert.ErrorIs(t, err, ErrNotRecipient)
	})
	t.Run("recipient list rewritten", func(t *testing.T) {
		bobLine := []byte(envTo + bob.DeviceID().String() + "\n")
		carolLine := []byte(envTo + carol.DeviceID().String() + "\n")
		forged := bytes.Replace(env, bobLine, carolLine, 1)
		require.NotEqual(t, env, forged)
		_, _, err := openBytes(ageSeal(t, forged, carol.DeviceID()), carol)
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("sender rewritten", func(t *testing.T) {
		forged := bytes.Replace(env, []byte(alice.DeviceID().String()), []byte(carol.DeviceID().String()), 1)
		_, _, err := openBytes(ageSeal(t, forged, bob.DeviceID()), bob)
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("data altered", func(t *testing.T) {
		forged := bytes.Clone(env)
		forged[len(forged)/2] ^= 1
		_, _, err := openBytes(ageSeal(t, forged, bob.DeviceID()), bob)
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("data cut, trailer kept", func(t *testing.T) {
		forged := append(bytes.Clone(env[:len(env)-trailerLen-1000]), env[len(env)-trailerLen:]...)
		_, _, err := openBytes(ageSeal(t, forged, bob.DeviceID()), bob)
		assert.ErrorIs(t, err, ErrTruncated)
	})
	t.Run("envelope cut", func(t *testing.T) {
		hdrLen := len(envelopeHeader(alice.DeviceID(), []DeviceID{bob.DeviceID()}))
		for _, n := range []int{0, 5, len(envMagic), hdrLen - 1, hdrLen, hdrLen + trailerLen - 1, len(env) - 1} {
			_, _, err := openBytes(ageSeal(t, env[:n], bob.DeviceID()), bob)
			assert.ErrorIs(t, err, ErrTruncated, "cut at %d", n)
		}
	})
	t.Run("plain age file", func(t *testing.T) {
		_, _, err := openBytes(ageSeal(t, data, bob.DeviceID()), bob)
		assert.ErrorIs(t, err, ErrCorrupt)
	})
}

func TestOpenTamper(t *testing.T) {
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	data := testData(200_000) // four age chunks
	sealed := sealBytes(t, data, []DeviceID{bob.DeviceID()}, alice)
	hdrEnd := bytes.Index(sealed, []byte("\n--- ")) + 1
	require.Positive(t, hdrEnd)
	payload := bytes.IndexByte(sealed[hdrEnd:], '\n') + hdrEnd + 1 // after the MAC line: the nonce
	const encChunk = 64<<10 + 16

	offsets := map[string]int{
		"intro":            0,
		"intro version":    len("age-encryption.org/v"),
		"stanza type":      len(ageIntro) + 4,
		"stanza body":      hdrEnd - 10,
		"header MAC":       hdrEnd + 6,
		"nonce":            payload + 3,
		"first chunk":      payload + 16 + 5,
		"first chunk tag":  payload + 16 + encChunk - 1,
		"second chunk":     payload + 16 + encChunk,
		"middle":           len(sealed) / 2,
		"last chunk":       len(sealed) - 100,
		"last byte":        len(sealed) - 1,
		"trailer in chunk": len(sealed) - 16 - 10,
	}
	for name, off := range offsets {
		t.Run("flip "+name, func(t *testing.T) {
			bad := bytes.Clone(sealed)
			bad[off] ^= 0x40
			got, _, err := openBytes(bad, bob)
			require.Error(t, err, "flipped byte %d was not detected", off)
			assert.True(t, isOurError(err), "unclassified error: %v", err)
			assert.LessOrEqual(t, len(got), len(data))
			t.Logf("offset %d: %v", off, err)
		})
	}
	cuts := []int{0, 1, len(ageIntro) - 1, len(ageIntro), hdrEnd - 1, hdrEnd, payload, payload + 16,
		payload + 16 + 1, payload + 16 + encChunk, payload + 16 + 2*encChunk, len(sealed) / 2,
		len(sealed) - 17, len(sealed) - 16, len(sealed) - 1}
	for _, n := range cuts {
		t.Run(fmt.Sprintf("cut at %d", n), func(t *testing.T) {
			_, _, err := openBytes(sealed[:n], bob)
			require.Error(t, err, "truncation to %d bytes was not detected", n)
			assert.True(t, errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt), "got %v", err)
			t.Logf("%v", err)
		})
	}
	t.Run("appended byte", func(t *testing.T) {
		_, _, err := openBytes(append(bytes.Clone(sealed), 0), bob)
		assert.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("untouched", func(t *testing.T) {
		got, _, err := openBytes(sealed, bob)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got))
	})
}

func TestOpenVerified(t *testing.T) {
	alice, bob, mallory := sealIdentity(t, 1), sealIdentity(t, 2), sealIdentity(t, 6)
	data := testData(150_000)
	dir := t.TempDir()

	sealed := sealBytes(t, data, []DeviceID{bob.DeviceID()}, alice)
	v, sender, err := OpenVerified(context.Background(), bytes.NewReader(sealed), bob, dir)
	require.NoError(t, err)
	assert.Equal(t, alice.DeviceID(), sender)
	assert.Equal(t, int64(len(data)), v.Size())
	info, err := os.Stat(v.Name())
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), info.Mode().Perm())
	got, err := io.ReadAll(v)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
	buf := make([]byte, 10)
	_, err = v.ReadAt(buf, 1234)
	require.NoError(t, err)
	assert.Equal(t, data[1234:1244], buf)
	require.NoError(t, v.Close())
	assert.ErrorIs(t, v.Close(), fs.ErrClosed)
	_, err = os.Stat(v.Name())
	assert.ErrorIs(t, err, fs.ErrNotExist, "Close removes the file")

	var forged bytes.Buffer
	w, err := sealWith(context.Background(), &forged, []DeviceID{bob.DeviceID()}, alice.DeviceID(), mallory.key)
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, _, err = OpenVerified(context.Background(), &forged, bob, dir)
	assert.ErrorIs(t, err, ErrBadSignature)

	_, _, err = OpenVerified(context.Background(), bytes.NewReader(sealed[:len(sealed)-1]), bob, dir)
	assert.Error(t, err)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "failed opens leave no plaintext behind")
}

func TestIsSealed(t *testing.T) {
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	sealed := sealBytes(t, []byte("x"), []DeviceID{bob.DeviceID()}, alice)
	tests := []struct {
		name   string
		prefix []byte
		want   bool
	}{
		{"sealed", sealed, true},
		{"exact prefix", sealed[:SealedPrefixLen], true},
		{"too short", sealed[:SealedPrefixLen-1], false},
		{"empty", nil, false},
		{"git bundle", []byte("# v2 git bundle\n"), false},
		{"armored age", []byte("-----BEGIN AGE ENCRYPTED FILE-----\n"), false},
		{"other version", []byte("age-encryption.org/v2\n"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsSealed(tt.prefix))
		})
	}
}

func TestSealErrors(t *testing.T) {
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	ctx := context.Background()
	// About half of all y coordinates have no point on the curve.
	var notAPoint DeviceID
	for y := byte(2); ; y++ {
		notAPoint[0] = y
		if _, err := ageRecipient(notAPoint); err != nil {
			break
		}
	}
	tooMany := make([]DeviceID, MaxSealRecipients+1)
	for i := range tooMany {
		id, err := GenerateIdentity(nil)
		require.NoError(t, err)
		tooMany[i] = id.DeviceID()
	}
	tests := []struct {
		name string
		to   []DeviceID
		from *Identity
	}{
		{"no recipients", nil, alice},
		{"zero recipient", []DeviceID{bob.DeviceID(), {}}, alice},
		{"not a curve point", []DeviceID{notAPoint}, alice},
		{"no sender", []DeviceID{bob.DeviceID()}, nil},
		{"too many recipients", tooMany, alice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w, err := Seal(ctx, &out, tt.to, tt.from)
			assert.Error(t, err)
			assert.Nil(t, w)
		})
	}

	t.Run("closed writer", func(t *testing.T) {
		var out bytes.Buffer
		w, err := Seal(ctx, &out, []DeviceID{bob.DeviceID()}, alice)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		n := out.Len()
		assert.NoError(t, w.Close(), "Close again returns the first result")
		_, err = w.Write([]byte("late"))
		assert.ErrorIs(t, err, fs.ErrClosed)
		assert.Equal(t, n, out.Len())
	})
	t.Run("open without identity", func(t *testing.T) {
		_, _, err := Open(ctx, strings.NewReader(ageIntro), nil)
		assert.Error(t, err)
	})
	t.Run("open junk", func(t *testing.T) {
		_, _, err := Open(ctx, strings.NewReader("# v2 git bundle\n"), bob)
		assert.ErrorIs(t, err, ErrCorrupt)
		_, _, err = Open(ctx, strings.NewReader(""), bob)
		assert.True(t, isOurError(err), "got %v", err)
	})
}

func TestSealContextCancel(t *testing.T) {
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	w, err := Seal(ctx, &out, []DeviceID{bob.DeviceID()}, alice)
	require.NoError(t, err)
	_, err = w.Write(testData(1000))
	require.NoError(t, err)
	cancel()
	_, err = w.Write(testData(1000))
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, w.Close(), context.Canceled)

	_, err = Seal(ctx, &out, []DeviceID{bob.DeviceID()}, alice)
	assert.ErrorIs(t, err, context.Canceled)

	sealed := sealBytes(t, testData(300_000), []DeviceID{bob.DeviceID()}, alice)
	ctx, cancel = context.WithCancel(context.Background())
	r, _, err := Open(ctx, bytes.NewReader(sealed), bob)
	require.NoError(t, err)
	_, err = io.ReadFull(r, make([]byte, 1000))
	require.NoError(t, err)
	cancel()
	_, err = readAll(r)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestSealAgeCLI checks the promise that the standard age CLI opens our
// files with the identity file SaveIdentity writes, and that what it
// prints is the envelope described in doc.go.
func TestSealAgeCLI(t *testing.T) {
	agePath, err := exec.LookPath("age")
	if err != nil {
		msg := "SKIPPING age CLI interop test: the `age` command is not installed (apt-get install age)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " — CI must install it")
		}
		fmt.Fprintln(os.Stderr, "!!!", msg)
		t.Skip(msg)
	}
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	dir := t.TempDir()
	idFile := filepath.Join(dir, "identity")
	require.NoError(t, SaveIdentity(idFile, bob))

	for _, n := range []int{0, 5, 200_000} {
		data := testData(n)
		sealedFile := filepath.Join(dir, fmt.Sprintf("sealed-%d", n))
		require.NoError(t, os.WriteFile(sealedFile, sealBytes(t, data, []DeviceID{bob.DeviceID()}, alice), 0o600))

		cmd := exec.Command(agePath, "-d", "-i", idFile, sealedFile)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		env, err := cmd.Output()
		require.NoError(t, err, "age -d: %s", stderr.String())

		// The CLI prints the envelope: header lines, data, 72-byte trailer.
		hdr := envelopeHeader(alice.DeviceID(), []DeviceID{bob.DeviceID()})
		require.True(t, bytes.HasPrefix(env, hdr), "age -d output starts with the envelope header")
		require.Len(t, env, len(hdr)+n+trailerLen)
		assert.True(t, bytes.Equal(data, env[len(hdr):len(hdr)+n]))

		// Our envelope parser reads the CLI's output and verifies it.
		r, err := openEnvelope(context.Background(), bytes.NewReader(env), bob.DeviceID())
		require.NoError(t, err)
		got, err := readAll(r)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got))
		assert.Equal(t, alice.DeviceID(), r.sender)

		// The by-hand recovery documented in doc.go (one recipient).
		require.Len(t, hdr, 155)
		recipe := exec.Command("sh", "-c", `"$0" -d -i "$1" "$2" | tail -c +156 | head -c -72`, agePath, idFile, sealedFile)
		recovered, err := recipe.Output()
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, recovered), "doc.go recipe recovers the data")
	}

	// age with someone else's identity refuses.
	eveFile := filepath.Join(dir, "eve")
	require.NoError(t, SaveIdentity(eveFile, sealIdentity(t, 5)))
	out, err := exec.Command(agePath, "-d", "-i", eveFile, filepath.Join(dir, "sealed-5")).CombinedOutput()
	assert.Error(t, err, "age -d with the wrong identity: %s", out)

	// And a file made by the CLI for our DeviceID's ssh line opens with our
	// key at the age level (it is not an envelope, so Open says so).
	plainFile := filepath.Join(dir, "plain.age")
	cmd := exec.Command(agePath, "-r", bob.AuthorizedKey(), "-o", plainFile)
	cmd.Stdin = strings.NewReader("hello")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "age -r: %s", out)
	plain, err := os.ReadFile(plainFile)
	require.NoError(t, err)
	assert.True(t, IsSealed(plain))
	_, _, err = openBytes(plain, bob)
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Equal(t, []byte("hello"), envelopeOf(t, plain, bob))
}

// vmHWM returns the process's peak resident set size in bytes
// (/proc/self/status VmHWM), or -1 where that is unavailable.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// resetHWM resets the peak RSS counter to the current RSS (Linux ≥ 4.0).
func resetHWM() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// patternReader yields n deterministic bytes without holding them: a
// block of random bytes repeated with a period that is not a multiple of
// any chunk size.
type patternReader struct{ n, off int64 }

var patternBlock = testData(1<<20 + 7)

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for done := 0; done < len(b); {
		i := (p.off + int64(done)) % int64(len(patternBlock))
		done += copy(b[done:], patternBlock[i:])
	}
	p.off += int64(len(b))
	return len(b), nil
}

// streamSealOpen seals n bytes and opens them again through a pipe, never
// holding more than a chunk, and checks the data arrived intact.
func streamSealOpen(tb testing.TB, n int64, from, to *Identity, wantSum []byte) {
	tb.Helper()
	pr, pw := io.Pipe()
	sealErr := make(chan error, 1)
	go func() {
		w, err := Seal(context.Background(), pw, []DeviceID{to.DeviceID()}, from)
		if err == nil {
			_, err = io.Copy(w, &patternReader{n: n})
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
		sealErr <- err
	}()
	r, sender, err := Open(context.Background(), pr, to)
	require.NoError(tb, err)
	require.Equal(tb, from.DeviceID(), sender)
	got := sha256.New()
	m, err := io.Copy(got, r)
	require.NoError(tb, err)
	require.NoError(tb, <-sealErr)
	require.Equal(tb, n, m)
	require.Equal(tb, wantSum, got.Sum(nil))
}

// patternSum is the SHA-256 of the first n bytes of patternReader.
func patternSum(tb testing.TB, n int64) []byte {
	h := sha256.New()
	_, err := io.Copy(h, &patternReader{n: n})
	require.NoError(tb, err)
	return h.Sum(nil)
}

// TestSealBoundedMemory streams 64 MiB through Seal and Open and checks
// the peak RSS grew by far less than that.
func TestSealBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB")
	}
	if !resetHWM() || vmHWM() < 0 {
		t.Skip("needs Linux /proc/self/clear_refs and VmHWM")
	}
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	const n = 64 << 20
	sum := patternSum(t, n)
	before := vmHWM()
	streamSealOpen(t, n, alice, bob, sum)
	grew := vmHWM() - before
	t.Logf("peak RSS grew by %.1f MiB while streaming 64 MiB", float64(grew)/(1<<20))
	assert.Less(t, grew, int64(32<<20), "memory must not grow with the stream")
}

// BenchmarkSealOpen seals and opens one stream through a pipe (256 MiB by
// default; PEERSYNC_SEAL_BENCH_MIB=1024 for the 1 GiB figure) and reports
// the peak RSS of the process while doing it.
func BenchmarkSealOpen(b *testing.B) {
	size := int64(256 << 20)
	if s := os.Getenv("PEERSYNC_SEAL_BENCH_MIB"); s != "" {
		mib, err := strconv.ParseInt(s, 10, 64)
		require.NoError(b, err)
		size = mib << 20
	}
	alice, bob := sealIdentity(b, 1), sealIdentity(b, 2)
	sum := patternSum(b, size)
	resetHWM()
	base := vmHWM() // RSS before streaming: the test binary itself
	b.SetBytes(size)
	for b.Loop() {
		streamSealOpen(b, size, alice, bob, sum)
	}
	if hwm := vmHWM(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "peakRSS-MiB")
		b.ReportMetric(float64(base)/(1<<20), "startRSS-MiB")
	}
}

// failWriter accepts n bytes, then fails.
type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

func TestSealWriteErrors(t *testing.T) {
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	for _, limit := range []int{0, 100, 70_000, 140_000} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			w, err := Seal(context.Background(), &failWriter{n: limit}, []DeviceID{bob.DeviceID()}, alice)
			if err != nil { // the age header did not fit
				assert.ErrorIs(t, err, errDiskFull)
				return
			}
			_, werr := w.Write(testData(150_000))
			cerr := w.Close()
			if limit < 2*(64<<10+16) { // two full chunks are written by Write
				require.Error(t, errors.Join(werr, cerr))
				assert.ErrorIs(t, errors.Join(werr, cerr), errDiskFull)
				assert.Equal(t, cerr, w.Close(), "Close reports the failure again")
			} else {
				assert.NoError(t, werr)
				assert.ErrorIs(t, cerr, errDiskFull, "the last chunk and trailer do not fit")
			}
		})
	}
}
