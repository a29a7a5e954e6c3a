package httpapi

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HostAllowed reports whether host (a Host header) names the listener
// whose address is bound, with the listener's port: "localhost", a
// loopback address, the listener's own address (for a wildcard listener,
// any address of this machine), or lanName + ".local" when a --lan-name is
// configured. No other name is accepted, *.local ones included: a web page
// elsewhere that rebinds its name to this machine (DNS rebinding) sends
// its own name and is refused.
func HostAllowed(host string, bound net.Addr, lanName string) bool {
	ta, ok := bound.(*net.TCPAddr)
	if !ok {
		return false
	}
	return hostAllowed(host, ta, lanName, isLocalIP)
}

// RequestHostAllowed is HostAllowed for a request served by net/http: the
// listener's address is the local address of the request's connection.
func RequestHostAllowed(r *http.Request, lanName string) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return local != nil && HostAllowed(r.Host, local, lanName)
}

func hostAllowed(host string, bound *net.TCPAddr, lanName string, local func(net.IP) bool) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "80"
	}
	if port != strconv.Itoa(bound.Port) {
		return false
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		if bound.IP == nil || bound.IP.IsUnspecified() {
			return local(ip)
		}
		return ip.Equal(bound.IP)
	}
	lanName = strings.TrimSuffix(strings.ToLower(lanName), ".local")
	return name == "localhost" || (lanName != "" && name == lanName+".local")
}

// isLocalIP reports whether ip is one of this machine's addresses.
func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
