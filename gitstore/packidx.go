package gitstore

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
)

// encodeIdx returns the version 2 pack index of the objects of one pack:
//
//	"\377tOc", version 2             (4 + 4 bytes)
//	fan-out: 256 cumulative counts   (uint32 each, by first hash byte)
//	object names, sorted             (20 bytes each)
//	CRC-32 of each packed entry      (uint32 each)
//	offsets                          (uint32 each; MSB set = index into the next table)
//	64-bit offsets                   (uint64 each, only for offsets >= 2^31)
//	pack checksum, index checksum    (20 bytes each)
//
// All integers are big endian.
func encodeIdx(objs map[plumbing.Hash]packedObj, packSum plumbing.Hash) []byte {
	names := make([]plumbing.Hash, 0, len(objs))
	for h := range objs {
		names = append(names, h)
	}
	slices.SortFunc(names, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
	n := len(names)
	b := make([]byte, 0, 8+256*4+n*(20+4+4)+40)
	b = append(b, 0xff, 't', 'O', 'c', 0, 0, 0, 2)
	var fan [256]uint32
	for _, h := range names {
		fan[h[0]]++
	}
	var total uint32
	for i := range fan {
		total += fan[i]
		b = binary.BigEndian.AppendUint32(b, total)
	}
	for _, h := range names {
		b = append(b, h[:]...)
	}
	for _, h := range names {
		b = binary.BigEndian.AppendUint32(b, objs[h].crc)
	}
	var large []uint64
	for _, h := range names {
		off := objs[h].off
		if off < 1<<31 {
			b = binary.BigEndian.AppendUint32(b, uint32(off))
			continue
		}
		b = binary.BigEndian.AppendUint32(b, 1<<31|uint32(len(large)))
		large = append(large, uint64(off))
	}
	for _, off := range large {
		b = binary.BigEndian.AppendUint64(b, off)
	}
	b = append(b, packSum[:]...)
	sum := sha1.Sum(b)
	return append(b, sum[:]...)
}
