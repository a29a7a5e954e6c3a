package crypto

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fuzz targets open input addressed to bob. Only alice ever signs, so
// any input that opens cleanly must carry one of alice's signed payloads.
var fuzzPlaintexts = [][]byte{nil, []byte("hello\n"), testData(70_000)}

// fuzzEnvelopes returns valid envelopes (age payloads) from alice to bob:
// exactly what `age -d` prints for a sealed stream.
func fuzzEnvelopes(tb testing.TB) [][]byte {
	alice, bob, carol := sealIdentity(tb, 1), sealIdentity(tb, 2), sealIdentity(tb, 3)
	var out [][]byte
	for i, p := range fuzzPlaintexts {
		to := []DeviceID{bob.DeviceID()}
		if i == 1 {
			to = append(to, carol.DeviceID())
		}
		out = append(out, envelopeOf(tb, sealBytes(tb, p, to, alice), bob))
	}
	return out
}

// FuzzOpenEnvelope fuzzes the envelope parser and verifier we own: the
// input is a decrypted age payload.
func FuzzOpenEnvelope(f *testing.F) {
	for _, e := range fuzzEnvelopes(f) {
		f.Add(e)
	}
	bob := sealIdentity(f, 2).DeviceID()
	alice := sealIdentity(f, 1).DeviceID()
	f.Fuzz(func(t *testing.T, env []byte) {
		r, err := openEnvelope(context.Background(), bytes.NewReader(env), bob)
		if err != nil {
			if !isOurError(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		out, err := readAll(r)
		if err != nil {
			if !isOurError(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		// Success: the data is the envelope minus header and trailer, and
		// it must be one of alice's signed plaintexts.
		if r.sender != alice {
			t.Fatalf("opened with a signature from %s", r.sender)
		}
		if len(env) < len(out)+trailerLen || !bytes.Equal(out, env[len(env)-trailerLen-len(out):len(env)-trailerLen]) {
			t.Fatalf("data is not the envelope's body")
		}
		if !isFuzzPlaintext(out) {
			t.Fatalf("opened %d bytes nobody signed", len(out))
		}
	})
}

// FuzzOpen fuzzes the whole Open path, age layer included.
func FuzzOpen(f *testing.F) {
	alice, bob := sealIdentity(f, 1), sealIdentity(f, 2)
	for _, p := range fuzzPlaintexts {
		f.Add(sealBytes(f, p, []DeviceID{bob.DeviceID()}, alice))
	}
	f.Fuzz(func(t *testing.T, sealed []byte) {
		r, sender, err := Open(context.Background(), bytes.NewReader(sealed), bob)
		if err != nil {
			if !isOurError(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		out, err := readAll(r)
		if err != nil {
			if !isOurError(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if sender != alice.DeviceID() || !isFuzzPlaintext(out) {
			t.Fatalf("opened %d bytes from %s that nobody signed", len(out), sender.Short())
		}
	})
}

func isFuzzPlaintext(b []byte) bool {
	for _, p := range fuzzPlaintexts {
		if bytes.Equal(b, p) {
			return true
		}
	}
	return false
}

// TestWriteSealFuzzCorpus regenerates the checked-in seed corpus in
// testdata/fuzz when PEERSYNC_WRITE_FUZZ_CORPUS=1. The seeds are valid
// inputs plus hand-made malformed envelopes that reach each parser branch.
func TestWriteSealFuzzCorpus(t *testing.T) {
	if os.Getenv("PEERSYNC_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set PEERSYNC_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz seeds")
	}
	alice, bob, carol := sealIdentity(t, 1), sealIdentity(t, 2), sealIdentity(t, 3)
	envs := fuzzEnvelopes(t)
	hdr := envelopeHeader(alice.DeviceID(), []DeviceID{bob.DeviceID()})
	unsorted := []byte(envMagic + envFrom + alice.DeviceID().String() + "\n" +
		envTo + bob.DeviceID().String() + "\n" + envTo + carol.DeviceID().String() + "\n\n")
	if b, c := bob.DeviceID(), carol.DeviceID(); bytes.Compare(b[:], c[:]) < 0 {
		unsorted = []byte(envMagic + envFrom + alice.DeviceID().String() + "\n" +
			envTo + carol.DeviceID().String() + "\n" + envTo + bob.DeviceID().String() + "\n\n")
	}
	envSeeds := map[string][]byte{
		"valid-empty":      envs[0],
		"valid-two-to":     envs[1],
		"magic-only":       []byte(envMagic),
		"header-only":      hdr,
		"header-short-sig": append(bytes.Clone(hdr), make([]byte, trailerLen-1)...),
		"zero-sig":         append(bytes.Clone(hdr), make([]byte, trailerLen)...),
		"lowercase-id":     bytes.ToLower(envs[0]),
		"unsorted-to":      append(unsorted, make([]byte, trailerLen)...),
		"no-recipients":    []byte(envMagic + envFrom + alice.DeviceID().String() + "\n\n"),
		"long-line":        append([]byte(envMagic+envFrom), bytes.Repeat([]byte("A"), 70_000)...),
		"plain-text":       []byte("hello world\n"),
	}
	writeCorpus(t, "FuzzOpenEnvelope", envSeeds)

	sealed := sealBytes(t, []byte("hello\n"), []DeviceID{bob.DeviceID()}, alice)
	cut := sealed[:len(sealed)-1]
	writeCorpus(t, "FuzzOpen", map[string][]byte{
		"valid-hello": sealed,
		"cut":         cut,
		"intro-only":  []byte(ageIntro),
	})
}

func writeCorpus(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds {
		sum := sha256.Sum256(b)
		file := filepath.Join(dir, fmt.Sprintf("%s-%x", name, sum[:4]))
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		require.NoError(t, os.WriteFile(file, []byte(body), 0o644))
	}
}

// TestSealFuzzCorpusValid keeps the checked-in "valid-*" seeds valid: if
// the format changes, they must be regenerated.
func TestSealFuzzCorpusValid(t *testing.T) {
	alice, bob := sealIdentity(t, 1), sealIdentity(t, 2)
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "valid-*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		lit, ok := bytes.CutPrefix(raw, []byte("go test fuzz v1\n[]byte("))
		require.True(t, ok, file)
		s, err := strconv.Unquote(string(bytes.TrimSuffix(lit, []byte(")\n"))))
		require.NoError(t, err, file)
		var r interface{ Read([]byte) (int, error) }
		var sender DeviceID
		if filepath.Base(filepath.Dir(file)) == "FuzzOpen" {
			r, sender, err = Open(context.Background(), bytes.NewReader([]byte(s)), bob)
		} else {
			var er *openReader
			er, err = openEnvelope(context.Background(), bytes.NewReader([]byte(s)), bob.DeviceID())
			if err == nil {
				r, sender = er, er.sender
			}
		}
		require.NoError(t, err, file)
		out, err := readAll(r)
		require.NoError(t, err, file)
		require.Equal(t, alice.DeviceID(), sender)
		require.True(t, isFuzzPlaintext(out), file)
	}
}
