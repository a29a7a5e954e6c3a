package testutil

import (
	"bufio"
	"math/rand/v2"
	"os"
	"testing"
)

// WriteRandomFile writes size incompressible bytes to p: a PCG stream
// seeded with seed and size, so the same arguments give the same file.
func WriteRandomFile(tb testing.TB, p string, size int64, seed uint64) {
	tb.Helper()
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(seed, uint64(size)))
	buf := make([]byte, 1<<16)
	for n := int64(0); n < size; n += int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		if _, err := w.Write(buf[:min(int64(len(buf)), size-n)]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}
