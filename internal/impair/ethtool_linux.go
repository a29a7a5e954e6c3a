package impair

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethSSFeatures is ETH_SS_FEATURES, the string set of netdev feature names.
const ethSSFeatures = 4

// ethGStringLen is ETH_GSTRING_LEN.
const ethGStringLen = 32

// offloadOff reports whether a feature, by its ethtool name, must be off on
// the wire's interfaces: every kind of segmentation offload (so no frame
// larger than the MTU reaches, or leaves, the forwarder, and random loss
// hits single packets rather than 64 KiB bursts) and every kind of receive
// coalescing. Checksum offload stays on: the forwarder carries the
// checksum state across in the virtio-net header (see wire_linux.go).
func offloadOff(name string) bool {
	switch {
	case strings.HasPrefix(name, "tx-") && strings.HasSuffix(name, "-segmentation"):
		return true // tx-tcp-segmentation, tx-udp-segmentation, tx-tcp6-..., tunnels
	}
	switch name {
	case "tx-gso-list", "tx-gso-partial", "rx-gro", "rx-gro-list", "rx-gro-hw",
		"rx-lro", "rx-udp-gro-forwarding":
		return true
	}
	return false
}

// ifreqData is struct ifreq with ifr_data: 16 bytes of name, then a pointer,
// padded to the size of struct ifreq (40 bytes on 64-bit Linux).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [40 - unix.IFNAMSIZ - unsafe.Sizeof(uintptr(0))]byte
}

// ethtool runs one SIOCETHTOOL request, whose command buffer is buf, on
// interface ifname through socket fd.
func ethtool(fd int, ifname string, buf []byte) error {
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&buf[0])
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(buf)
	if errno != 0 {
		return errno
	}
	return nil
}

// featureNames returns the names of interface ifname's features, indexed
// by feature bit.
func featureNames(fd int, ifname string) ([]string, error) {
	ne := binary.NativeEndian
	// struct ethtool_sset_info {cmd, reserved, sset_mask, data[]}.
	info := make([]byte, 16+4)
	ne.PutUint32(info[0:], unix.ETHTOOL_GSSET_INFO)
	ne.PutUint64(info[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, ifname, info); err != nil {
		return nil, fmt.Errorf("impair: ethtool GSSET_INFO %s: %w", ifname, err)
	}
	if ne.Uint64(info[8:]) == 0 {
		return nil, fmt.Errorf("impair: %s reports no feature names", ifname)
	}
	count := int(ne.Uint32(info[16:]))
	// struct ethtool_gstrings {cmd, string_set, len, data[]}.
	strs := make([]byte, 12+count*ethGStringLen)
	ne.PutUint32(strs[0:], unix.ETHTOOL_GSTRINGS)
	ne.PutUint32(strs[4:], ethSSFeatures)
	ne.PutUint32(strs[8:], uint32(count))
	if err := ethtool(fd, ifname, strs); err != nil {
		return nil, fmt.Errorf("impair: ethtool GSTRINGS %s: %w", ifname, err)
	}
	names := make([]string, count)
	for i := range names {
		names[i] = string(bytes.TrimRight(strs[12+i*ethGStringLen:12+(i+1)*ethGStringLen], "\x00"))
	}
	return names, nil
}

// activeBits returns, for each of n features of ifname, whether it is active.
func activeBits(fd int, ifname string, n int) ([]bool, error) {
	ne := binary.NativeEndian
	blocks := (n + 31) / 32
	// struct ethtool_gfeatures {cmd, size, {available, requested, active, never_changed}[size]}.
	get := make([]byte, 8+16*blocks)
	ne.PutUint32(get[0:], unix.ETHTOOL_GFEATURES)
	ne.PutUint32(get[4:], uint32(blocks))
	if err := ethtool(fd, ifname, get); err != nil {
		return nil, fmt.Errorf("impair: ethtool GFEATURES %s: %w", ifname, err)
	}
	on := make([]bool, n)
	for i := range on {
		on[i] = ne.Uint32(get[8+16*(i/32)+8:])&(1<<(i%32)) != 0
	}
	return on, nil
}

// disableOffloads turns off, on interface ifname of the calling thread's
// network namespace, every feature offloadOff names, with the ethtool ioctl
// (what "ethtool -K ifname tso off gso off gro off ..." does, without
// needing the ethtool command), and checks that they are off.
func disableOffloads(ifname string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("impair: socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	names, err := featureNames(fd, ifname)
	if err != nil {
		return err
	}
	ne := binary.NativeEndian
	blocks := (len(names) + 31) / 32
	// struct ethtool_sfeatures {cmd, size, {valid, requested}[size]}:
	// valid bits set, requested bits clear, for the features to turn off.
	set := make([]byte, 8+8*blocks)
	ne.PutUint32(set[0:], unix.ETHTOOL_SFEATURES)
	ne.PutUint32(set[4:], uint32(blocks))
	for i, name := range names {
		if offloadOff(name) {
			off := 8 + 8*(i/32)
			ne.PutUint32(set[off:], ne.Uint32(set[off:])|1<<(i%32))
		}
	}
	if err := ethtool(fd, ifname, set); err != nil {
		return fmt.Errorf("impair: ethtool SFEATURES %s: %w", ifname, err)
	}
	on, err := activeBits(fd, ifname, len(names))
	if err != nil {
		return err
	}
	var still []string
	for i, name := range names {
		if offloadOff(name) && on[i] {
			still = append(still, name)
		}
	}
	if len(still) > 0 {
		return fmt.Errorf("impair: %s: could not turn off %s", ifname, strings.Join(still, ", "))
	}
	return nil
}

// activeFeatures returns the names of the features active on ifname in the
// calling thread's namespace, for tests and logs.
func activeFeatures(ifname string) ([]string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	names, err := featureNames(fd, ifname)
	if err != nil {
		return nil, err
	}
	on, err := activeBits(fd, ifname, len(names))
	if err != nil {
		return nil, err
	}
	var active []string
	for i, name := range names {
		if on[i] {
			active = append(active, name)
		}
	}
	return active, nil
}
