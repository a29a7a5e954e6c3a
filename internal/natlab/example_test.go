//go:build linux

package natlab_test

import (
	"fmt"
	"strings"

	"github.com/peersync/peersync/internal/natlab"
)

// The rules that make a router a home NAT. natlab.New applies them in each
// router's namespace (that needs root); a symmetric NAT differs only in
// its --random-fully mapping.
func ExampleRouterRules() {
	for _, rule := range natlab.RouterRules(natlab.Config{Symmetric: true}) {
		fmt.Println("iptables " + strings.Join(rule, " "))
	}
	// Output:
	// iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
	// iptables -A INPUT -i wan -m state --state ESTABLISHED,RELATED -j ACCEPT
	// iptables -A INPUT -i wan -j DROP
	// iptables -A FORWARD -i wan -m state --state ESTABLISHED,RELATED -j ACCEPT
	// iptables -A FORWARD -i wan -j DROP
}
