package mirror

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFileName is the sync engine's ignore-rules file, in gitignore
// syntax, read in the folder's root and in every subdirectory. What its
// rules exclude stays on this machine: it is neither uploaded nor kept on
// the target (see "What a Sync does").
const IgnoreFileName = ".peersyncignore"

// maxIgnoreFile caps the size of an ignore file read, as the engine does.
const maxIgnoreFile = 1 << 20

// ignoreRules holds, during one walk, the rules in force in every
// directory walked (by slash path, "" = the root): those of the
// .peersyncignore files in it and its parents, deeper and later lines
// winning, as in git and in the sync engine (the same matcher, go-git's).
type ignoreRules map[string][]gitignore.Pattern

// enter records the rules of directory abs (slash path rel): its parent's
// plus its own .peersyncignore's. An ignore file that exists but cannot be
// read (not a regular file, permission denied, over 1 MiB) is an error:
// mirroring without its rules could publish what they keep at home.
func (r ignoreRules) enter(abs, rel string) error {
	parent := r[path.Dir(rel)]
	if rel == "" {
		parent = nil
	} else if path.Dir(rel) == "." {
		parent = r[""]
	}
	own, err := readIgnoreFile(filepath.Join(abs, IgnoreFileName), rel)
	if err != nil {
		return err
	}
	r[rel] = append(parent[:len(parent):len(parent)], own...)
	return nil
}

// ignored reports whether the rules of rel's directory exclude rel.
func (r ignoreRules) ignored(rel string, isDir bool) bool {
	dir := path.Dir(rel)
	if dir == "." {
		dir = ""
	}
	ps := r[dir]
	return len(ps) > 0 && gitignore.NewMatcher(ps).Match(strings.Split(rel, "/"), isDir)
}

// readIgnoreFile parses the ignore file p (absent: no rules) whose rules
// apply to the directory rel. A symlink is not followed and gives no rules,
// as the engine's scan skips symlinks.
func readIgnoreFile(p, rel string) ([]gitignore.Pattern, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("mirror: ignore rules %q: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("mirror: ignore rules %q: not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("mirror: ignore rules: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIgnoreFile+1))
	if err != nil {
		return nil, fmt.Errorf("mirror: ignore rules %q: %w", p, err)
	}
	if len(b) > maxIgnoreFile {
		return nil, fmt.Errorf("mirror: ignore rules %q are larger than 1 MiB", p)
	}
	var domain []string
	if rel != "" {
		domain = strings.Split(rel, "/")
	}
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxIgnoreFile+1)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps, nil
}
