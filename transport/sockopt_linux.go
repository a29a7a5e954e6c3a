//go:build linux

package transport

import (
	"log/slog"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpCongestion is the congestion control asked of Linux for TCP sockets.
const tcpCongestion = "bbr"

// setCongestion asks for BBR on the socket. If the kernel does not offer it
// (no tcp_bbr module, or not allowed to unprivileged processes), the
// socket keeps the system's default, silently but for a Debug log.
func setCongestion(rc syscall.RawConn, log *slog.Logger) {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, tcpCongestion)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		log.Debug("TCP congestion control unavailable; keeping the default", "want", tcpCongestion, "err", err)
	}
}
