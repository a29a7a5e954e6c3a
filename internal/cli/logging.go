package cli

import (
	"io"
	"log/slog"
)

// newLogger returns run's logger: text, or with --log-json one JSON object
// per line (time, level, msg and the attributes), for journald or a log
// collector.
func newLogger(w io.Writer, level slog.Level, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
