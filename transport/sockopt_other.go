//go:build !linux

package transport

import (
	"log/slog"
	"syscall"
)

// setCongestion does nothing: only Linux lets a socket choose its
// congestion control (TCP_CONGESTION).
func setCongestion(syscall.RawConn, *slog.Logger) {}
