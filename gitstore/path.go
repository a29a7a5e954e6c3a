package gitstore

import (
	"errors"
	"fmt"
	"strings"
)

// ValidPath reports whether p, a slash-separated path relative to the folder
// root, may be written into a folder. It applies the component rules of the
// package documentation (section "Safety rules") to every component and
// returns an error describing the first violation.
//
// Modes are checked separately (gitlinks and symlinks), by [Store.ApplyBundle].
func ValidPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.HasPrefix(p, "/") {
		return errors.New("absolute path")
	}
	for _, c := range strings.Split(p, "/") {
		if err := validComponent(c); err != nil {
			return err
		}
	}
	return nil
}

// validComponentBytes is validComponent for a name held as bytes: a plain
// name (ASCII letters, digits and punctuation, not starting with a dot,
// without "~", "/" or "\\") is accepted without converting it.
func validComponentBytes(c []byte) error {
	if plainComponent(c) {
		return nil
	}
	return validComponent(string(c))
}

// plainComponent reports whether c is a name every rule accepts without
// looking further: printable ASCII without space, "~", "/" or "\\", not
// starting with a dot (the reserved names and their NTFS short names need
// one of these).
func plainComponent[T string | []byte](c T) bool {
	if len(c) == 0 || c[0] == '.' {
		return false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i]; b <= ' ' || b >= 0x7f || b == '~' || b == '/' || b == '\\' {
			return false
		}
	}
	return true
}

// validComponent checks one path component (a tree entry name).
func validComponent(c string) error {
	if plainComponent(c) {
		return nil
	}
	switch {
	case c == "":
		return errors.New("empty path component")
	case c == "." || c == "..":
		return fmt.Errorf("component %q is not allowed", c)
	case strings.ContainsAny(c, "/\\\x00"):
		return fmt.Errorf("component %q contains a slash, backslash or NUL", c)
	}
	for _, r := range c {
		if isControl(r) {
			return fmt.Errorf("component %q contains control character %U", c, r)
		}
	}
	n := normalizeComponent(c)
	for _, reserved := range []string{".git", ".peersync", ".gitmodules"} {
		if n == reserved {
			return fmt.Errorf("component %q is reserved (%s)", c, reserved)
		}
	}
	if isShortName(n, "git~") || isShortName(n, "peersy~") || isShortName(n, "gitmod~") {
		return fmt.Errorf("component %q is an NTFS short name of a reserved name", c)
	}
	return nil
}

// normalizeComponent folds ASCII case, removes HFS+ ignorable code points and
// trailing dots and spaces (NTFS ignores them), so that ".GIT", ".git\u200c"
// and ".git. " all compare equal to ".git".
func normalizeComponent(c string) string {
	var b strings.Builder
	for _, r := range c {
		if isHFSIgnorable(r) {
			continue
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), ". ")
}

// isControl reports whether r is a C0 control (U+0000 to U+001F), DEL or a
// C1 control (U+0080 to U+009F): a name holding one could carry a terminal
// escape sequence or forge a line in a listing.
func isControl(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f
}

func isHFSIgnorable(r rune) bool {
	return (r >= 0x200c && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) ||
		(r >= 0x206a && r <= 0x206f) || r == 0xfeff
}

// isShortName reports whether n (normalized) is prefix followed by one or
// more digits, e.g. "git~1".
func isShortName(n, prefix string) bool {
	rest, ok := strings.CutPrefix(n, prefix)
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isWindowsReserved(c string) bool {
	base, _, _ := strings.Cut(c, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return base[3] >= '1' && base[3] <= '9'
	}
	return false
}
