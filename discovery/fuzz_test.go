package discovery

import (
	"bytes"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzParseTXT feeds TXT records (strings separated by NUL bytes) to
// parseTXT. Seeds are in testdata/fuzz/FuzzParseTXT.
func FuzzParseTXT(f *testing.F) {
	f.Add([]byte("id=" + peerID.String() + "\x00v=1\x00port=44996"))
	f.Add([]byte("v=1\x00id=" + peerID.String() + "\x00id=x"))
	f.Add([]byte("ID=\x00V=1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var txt []string
		for _, s := range bytes.Split(b, []byte{0}) {
			txt = append(txt, string(s))
		}
		info, err := parseTXT(txt)
		if err != nil {
			return
		}
		if info.Device.IsZero() {
			t.Fatal("accepted a zero DeviceID")
		}
		port := int(info.Port)
		if port == 0 {
			port = 1
		}
		again, err := parseTXT(encodeTXT(info.Device, port))
		if err != nil || again.Device != info.Device || int(again.Port) != port {
			t.Fatalf("round trip: %v %v", again, err)
		}
	})
}

// FuzzParsePacket feeds packets to parsePacket and then to the whole
// receive path (cache and responder), as a response from port 5353 and as
// a legacy query. Seeds are in testdata/fuzz/FuzzParsePacket.
func FuzzParsePacket(f *testing.F) {
	f.Add(announcement(f, "laptop ("+peerID.Short()+")", encodeTXT(peerID, 44996), 44996, "laptop.local.", "10.0.0.2", 120))
	f.Add(query(f, 0, ptrQuestion))
	f.Fuzz(func(t *testing.T, b []byte) {
		pk, err := parsePacket(b)
		if err == nil {
			if len(pk.Records) > maxRecords || len(pk.Questions) > maxRecords {
				t.Fatal("record limit not enforced")
			}
			for _, r := range pk.Records {
				if (r.Type == dnsmessage.TypeA || r.Type == dnsmessage.TypeAAAA) && !r.Addr.IsValid() {
					t.Fatal("address record without address")
				}
			}
		}
		d, _ := newTest(t, true, "web")
		d.handle(b, peerSrc, eth0)
		d.handle(b, netip.MustParseAddrPort("[fe80::2]:40000"), eth0)
		for _, p := range d.Peers() {
			if p.Device.IsZero() || p.Device == self || len(p.Addrs) == 0 {
				t.Fatalf("bad peer %+v", p)
			}
			for _, a := range p.Addrs {
				if !a.IsValid() || a.Port() == 0 {
					t.Fatalf("bad address %v", a)
				}
			}
		}
	})
}
