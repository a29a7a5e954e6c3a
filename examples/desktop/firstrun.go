package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/sync"
)

// firstRunMarker is a file in the home written once the first start of the
// app has set the default folder up, so that a second start finds
// everything as it was and a default folder the user removed later is not
// created again.
const firstRunMarker = "desktop-first-run"

// The default folder a new installation shares: ~/PeerSync.
const (
	defaultFolderID    = "default"
	defaultFolderLabel = "PeerSync"
)

// defaultParent is ~/PeerSync, where the default folder lives and where the
// pages suggest putting folders accepted from others; "" if the user has
// no home directory.
func defaultParent() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, defaultFolderLabel)
}

// firstRun gives a new installation its default folder (ID "default",
// label "PeerSync") at dir, once: if the home has no folder yet and has
// never been set up. It reports whether it created the folder.
func firstRun(ctx context.Context, e *sync.Engine, home, dir string) (bool, error) {
	marker := filepath.Join(home, firstRunMarker)
	if _, err := os.Stat(marker); err == nil || !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	created := false
	if dir != "" && len(e.Status().Folders) == 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("default folder: %w", err)
		}
		if err := e.AddFolder(ctx, sync.FolderConfig{ID: defaultFolderID, Label: defaultFolderLabel, Path: dir}); err != nil {
			return false, fmt.Errorf("default folder %s: %w", dir, err)
		}
		created = true
	}
	note := []byte("the desktop app's first start set this home up; delete to run it again\n")
	return created, os.WriteFile(marker, note, 0o600)
}
