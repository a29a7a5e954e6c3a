package gitstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFileName is the name of the ignore-rules file, in gitignore syntax,
// read in the folder root and in every subdirectory. It is an ordinary file:
// committed and synced like any other.
const IgnoreFileName = ".peersyncignore"

// maxIgnoreFile caps the size of a .peersyncignore file we read.
const maxIgnoreFile = 1 << 20

// ignoreScope carries the ignore rules in force in one directory during a
// walk: those of .peersyncignore files in it and in its parents, in
// increasing priority (deeper files win, later lines win, as in git).
type ignoreScope struct {
	patterns []gitignore.Pattern
	// dirs records the rules in force in every directory walked, by slash
	// path ("" = root); shared by all scopes of one walk, nil = do not
	// record.
	dirs map[string][]gitignore.Pattern
	// subdirs, when not nil, makes the walk list one directory only: the
	// subdirectories it would have walked are recorded here instead.
	subdirs map[string]bool
}

func newIgnoreScope() ignoreScope {
	return ignoreScope{dirs: map[string][]gitignore.Pattern{}}
}

// enter returns the scope of the directory absDir (slash path rel, "" for
// the root): the parent's rules plus those of absDir's .peersyncignore. An
// ignore file that cannot be read is logged and gives no rules (see
// enterDir for callers that must not go on without them).
func (sc ignoreScope) enter(absDir, rel string, log *slog.Logger) ignoreScope {
	out, err := sc.enterDir(absDir, rel, log)
	if err != nil {
		log.Warn("gitstore: cannot read ignore file; its rules are not used here", "dir", absDir, "err", err)
	}
	return out
}

// enterDir is enter, returning an error when absDir's .peersyncignore
// exists but cannot be read (not a regular file, permission denied, over
// 1 MiB): the scan then skips the directory rather than sync what the
// rules may exclude.
func (sc ignoreScope) enterDir(absDir, rel string, log *slog.Logger) (ignoreScope, error) {
	out := sc
	ps, err := readIgnoreFile(absDir, rel)
	if len(ps) > 0 {
		out.patterns = append(sc.patterns[:len(sc.patterns):len(sc.patterns)], ps...)
	}
	if out.dirs != nil {
		out.dirs[rel] = out.patterns
	}
	return out, err
}

// skip reports whether the rules exclude slash path p, an entry of the
// scope's directory.
func (sc ignoreScope) skip(p string, isDir bool) bool {
	return len(sc.patterns) > 0 && gitignore.NewMatcher(sc.patterns).Match(strings.Split(p, "/"), isDir)
}

// covers reports whether the file p (whether or not it is on disk), or one
// of its parent directories, is excluded by the rules recorded during the
// walk: those of p's deepest walked parent.
func (sc ignoreScope) covers(p string) bool {
	parts := strings.Split(p, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		ps, ok := sc.dirs[strings.Join(parts[:i], "/")]
		if !ok {
			continue
		}
		if len(ps) == 0 {
			return false
		}
		m := gitignore.NewMatcher(ps)
		for j := i; j < len(parts); j++ {
			if m.Match(parts[:j+1], j < len(parts)-1) {
				return true
			}
		}
		return false
	}
	return false
}

// readIgnoreFile parses <absDir>/.peersyncignore into patterns whose domain
// is rel. A missing file gives no patterns and no error. The file is opened
// as a scan opens files (no symlink followed, never blocking on a FIFO) and
// must be a regular file of at most 1 MiB.
func readIgnoreFile(absDir, rel string) ([]gitignore.Pattern, error) {
	p := filepath.Join(absDir, IgnoreFileName)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("ignore rules: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil // not followed, as a scan skips symlinks
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ignore rules %q: %w", IgnoreFileName, specialFileError(fi.Mode()))
	}
	f, err := openNoFollow(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("ignore rules: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("ignore rules: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ignore rules %q: %w", IgnoreFileName, specialFileError(fi.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxIgnoreFile+1))
	if err != nil {
		return nil, fmt.Errorf("ignore rules: read %q: %w", p, err)
	}
	if len(b) > maxIgnoreFile {
		return nil, fmt.Errorf("ignore rules %q are larger than 1 MiB", p)
	}
	return parseIgnore(b, rel), nil
}

// parseIgnore parses gitignore-syntax lines; rel ("" = root) is the
// directory they apply to.
func parseIgnore(b []byte, rel string) []gitignore.Pattern {
	var domain []string
	if rel != "" {
		domain = strings.Split(rel, "/")
	}
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxIgnoreFile)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps
}
