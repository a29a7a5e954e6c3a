package gitstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// copySparse writes the same bytes as a plain copy, whatever the mix of
// zero and data blocks, partial last block and empty input.
func TestCopySparseContent(t *testing.T) {
	block := bytes.Repeat([]byte{0}, sparseBlock)
	data := bytes.Repeat([]byte("x"), sparseBlock)
	cases := map[string][]byte{
		"empty":          nil,
		"small":          []byte("hello"),
		"zeros":          bytes.Repeat(block, 3),
		"zeros-and-tail": append(bytes.Repeat(block, 2), 0, 0, 0),
		"data-hole-data": bytes.Join([][]byte{data, block, block, data[:100]}, nil),
		"hole-at-end":    bytes.Join([][]byte{data, block}, nil),
		"almost-zero":    append(bytes.Repeat([]byte{0}, sparseBlock-1), 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			require.NoError(t, err)
			n, err := copySparse(f, bytes.NewReader(in))
			require.NoError(t, err)
			require.NoError(t, f.Close())
			assert.Equal(t, int64(len(in)), n)
			got, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			assert.True(t, bytes.Equal(in, got), "content differs")
		})
	}
}
