package mirror

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Kind is the protocol of a mirror target.
type Kind string

// The target kinds a URL can name.
const (
	// FTP is plain FTP (ftp://): the password and the files travel in the clear.
	FTP Kind = "ftp"
	// FTPS is FTP upgraded to TLS with AUTH TLS (ftps://, "explicit TLS"),
	// for the control connection and every data connection.
	FTPS Kind = "ftps"
	// SFTP is the SSH file transfer protocol (sftp://).
	SFTP Kind = "sftp"
)

// Target is a parsed mirror URL. Its String method hides the password.
type Target struct {
	// Kind is the protocol.
	Kind Kind
	// User is the login name; never empty after ParseTarget.
	User string
	// Password is the password given in the URL; empty if none. Never printed.
	Password string
	// HasPassword reports whether the URL carried a password (possibly empty).
	HasPassword bool
	// Host is the host name or address, without brackets or port.
	Host string
	// Port is the TCP port: the URL's, or 21 (ftp, ftps) or 22 (sftp).
	Port string
	// Path is the remote directory that receives the copy: "." is the login
	// directory, an absolute path is taken as is (see the package doc, "URLs").
	Path string
}

// URLError is returned by ParseTarget and New for a URL that cannot name a
// mirror target. Its message shows the URL with the password hidden.
type URLError struct {
	// URL is the offending URL, password hidden.
	URL string
	// Reason says what is wrong.
	Reason string
}

func (e *URLError) Error() string {
	return fmt.Sprintf("mirror: URL %q: %s", e.URL, e.Reason)
}

// ParseTarget parses an ftp://, ftps:// or sftp:// URL:
//
//	ftp://user[:password]@host[:port]/path
//	ftps://user[:password]@host[:port]/path
//	sftp://user[:password]@host[:port]/path
//
// The path names the remote directory that receives the copy. For every kind
// "/srv/www" is absolute and an empty path, "/" followed by nothing, is the
// login directory; "/~/sub" is "sub" under the login directory. Percent-escapes
// are decoded (a user name containing "@" is written %40). The file
// system's root is "//". Query strings and
// fragments are refused, so a typo cannot silently change the target.
func ParseTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, &URLError{URL: redactRaw(raw), Reason: "not a URL"}
	}
	bad := func(reason string) (Target, error) {
		return Target{}, &URLError{URL: redactURL(u), Reason: reason}
	}
	var t Target
	switch strings.ToLower(u.Scheme) {
	case "ftp":
		t.Kind, t.Port = FTP, "21"
	case "ftps":
		t.Kind, t.Port = FTPS, "21"
	case "sftp":
		t.Kind, t.Port = SFTP, "22"
	default:
		return bad("scheme must be ftp, ftps or sftp")
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("no host: write " + string(t.Kind) + "://user@host/path")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return bad("query strings and fragments are not supported (the password file, key file and certificate pin are Config fields)")
	}
	if u.User == nil || u.User.Username() == "" {
		return bad("no user name: write " + string(t.Kind) + "://user@host/path")
	}
	t.User = u.User.Username()
	t.Password, t.HasPassword = u.User.Password()
	t.Host = u.Hostname()
	if p := u.Port(); p != "" {
		t.Port = p
	}
	if t.Host == "" {
		return bad("no host")
	}
	if !validHost(t.Host) {
		return bad(fmt.Sprintf("host %q is not a host name or IP address", t.Host))
	}
	if n, err := strconv.Atoi(t.Port); err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", t.Port))
	}
	if strings.ContainsAny(t.User+t.Password, "\r\n") {
		return bad("user name or password contains a line break")
	}
	p := path.Clean(u.Path)
	switch {
	case u.Path == "" || u.Path == "/":
		t.Path = "."
	case p == "/~" || strings.HasPrefix(p, "/~/"):
		t.Path = path.Clean("." + strings.TrimPrefix(p, "/~"))
	default:
		t.Path = p
	}
	if strings.ContainsAny(t.Path, "\r\n") {
		return bad("path contains a line break")
	}
	return t, nil
}

// validHost accepts an IP address or a DNS name (letters, digits, "-",
// "_" and dots).
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Addr is host:port, ready to dial.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, t.Port) }

// String is the URL with the password replaced by "xxxxx", safe for logs.
func (t Target) String() string {
	u := url.URL{Scheme: string(t.Kind), Host: t.Addr()}
	if t.HasPassword {
		u.User = url.UserPassword(t.User, "xxxxx")
	} else {
		u.User = url.User(t.User)
	}
	switch {
	case t.Path == ".":
		u.Path = "/"
	case t.Path == "/":
		u.Path = "//"
	case strings.HasPrefix(t.Path, "/"):
		u.Path = t.Path
	default:
		u.Path = "/~/" + t.Path
	}
	return u.String()
}

// redactURL hides the password of a parsed URL.
func redactURL(u *url.URL) string {
	return u.Redacted()
}

// redactRaw hides whatever sits between "://" and the last "@" of the
// authority of a string that did not parse as a URL.
func redactRaw(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "(unparsable)"
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:i+3] + "xxxxx" + rest[at:]
}
