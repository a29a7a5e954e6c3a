package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS-SD names, fully qualified and lower case.
const (
	domain          = "local."
	serviceName     = ServiceType + "." + domain // "_peersync._udp.local."
	servicesEnumDNS = "_services._dns-sd._udp." + domain
)

const (
	// cacheFlush is the top bit of a resource record's class in mDNS
	// (RFC 6762 section 10.2): the record replaces older ones of its name
	// and type.
	cacheFlush = 1 << 15
	// unicastResponse is the top bit of a question's class (RFC 6762
	// section 5.4): the querier asks for a unicast answer.
	unicastResponse = 1 << 15
	// maxRecords caps how many records of one packet we look at.
	maxRecords = 64
	// maxPacket is the largest packet we read or write (RFC 6762 section
	// 17 allows up to 9000 bytes on the wire).
	maxPacket = 9000
)

// question is one parsed mDNS question.
type question struct {
	Name    string // lower case, fully qualified
	Type    dnsmessage.Type
	Unicast bool // QU bit set
}

// record is one parsed resource record that discovery cares about. Records
// of other types are skipped by parsePacket.
type record struct {
	Name  string // lower case, fully qualified
	Raw   string // Name as received
	Type  dnsmessage.Type
	TTL   uint32
	Flush bool // cache-flush bit set

	Ptr     string     // PTR target, original case (an instance name keeps its case)
	Target  string     // SRV target, lower case
	Port    uint16     // SRV port
	TXT     []string   // TXT strings
	Addr    netip.Addr // A or AAAA
	Section int        // 0 answer, 1 authority, 2 additional
}

// packet is a parsed mDNS message.
type packet struct {
	ID        uint16
	Response  bool
	Questions []question
	Records   []record
}

// errMalformed is wrapped by parsePacket errors.
var errMalformed = errors.New("malformed mDNS packet")

// parsePacket parses an mDNS message. It keeps questions and the PTR, SRV,
// TXT, A and AAAA records of all three sections (at most maxRecords in all)
// and rejects anything dnsmessage cannot parse, a non-zero opcode or rcode
// (RFC 6762 section 18.3 and 18.11) and truncated-looking names.
func parsePacket(b []byte) (packet, error) {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil {
		return packet{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if h.OpCode != 0 || h.RCode != 0 {
		return packet{}, fmt.Errorf("%w: opcode %d rcode %d", errMalformed, h.OpCode, h.RCode)
	}
	pk := packet{ID: h.ID, Response: h.Response}
	for {
		q, err := p.Question()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return packet{}, fmt.Errorf("%w: question: %v", errMalformed, err)
		}
		if len(pk.Questions) >= maxRecords {
			return packet{}, fmt.Errorf("%w: too many questions", errMalformed)
		}
		pk.Questions = append(pk.Questions, question{
			Name:    strings.ToLower(q.Name.String()),
			Type:    q.Type,
			Unicast: q.Class&unicastResponse != 0,
		})
	}
	sections := []func() (dnsmessage.ResourceHeader, error){p.AnswerHeader, p.AuthorityHeader, p.AdditionalHeader}
	for sec, next := range sections {
		for {
			rh, err := next()
			if errors.Is(err, dnsmessage.ErrSectionDone) {
				break
			}
			if err != nil {
				return packet{}, fmt.Errorf("%w: record header: %v", errMalformed, err)
			}
			if len(pk.Records) >= maxRecords {
				return packet{}, fmt.Errorf("%w: too many records", errMalformed)
			}
			r := record{
				Name:    strings.ToLower(rh.Name.String()),
				Raw:     rh.Name.String(),
				Type:    rh.Type,
				TTL:     rh.TTL,
				Flush:   rh.Class&cacheFlush != 0,
				Section: sec,
			}
			if rh.Class&^cacheFlush != dnsmessage.ClassINET {
				if err := skip(&p, sec); err != nil {
					return packet{}, err
				}
				continue
			}
			keep := true
			switch rh.Type {
			case dnsmessage.TypePTR:
				rr, err := p.PTRResource()
				if err != nil {
					return packet{}, fmt.Errorf("%w: PTR: %v", errMalformed, err)
				}
				r.Ptr = rr.PTR.String()
			case dnsmessage.TypeSRV:
				rr, err := p.SRVResource()
				if err != nil {
					return packet{}, fmt.Errorf("%w: SRV: %v", errMalformed, err)
				}
				r.Target, r.Port = strings.ToLower(rr.Target.String()), rr.Port
			case dnsmessage.TypeTXT:
				rr, err := p.TXTResource()
				if err != nil {
					return packet{}, fmt.Errorf("%w: TXT: %v", errMalformed, err)
				}
				r.TXT = rr.TXT
			case dnsmessage.TypeA:
				rr, err := p.AResource()
				if err != nil {
					return packet{}, fmt.Errorf("%w: A: %v", errMalformed, err)
				}
				r.Addr = netip.AddrFrom4(rr.A)
			case dnsmessage.TypeAAAA:
				rr, err := p.AAAAResource()
				if err != nil {
					return packet{}, fmt.Errorf("%w: AAAA: %v", errMalformed, err)
				}
				r.Addr = netip.AddrFrom16(rr.AAAA)
			default:
				keep = false
				if err := skip(&p, sec); err != nil {
					return packet{}, err
				}
			}
			if keep {
				pk.Records = append(pk.Records, r)
			}
		}
	}
	return pk, nil
}

func skip(p *dnsmessage.Parser, sec int) error {
	var err error
	switch sec {
	case 0:
		err = p.SkipAnswer()
	case 1:
		err = p.SkipAuthority()
	default:
		err = p.SkipAdditional()
	}
	if err != nil {
		return fmt.Errorf("%w: skip: %v", errMalformed, err)
	}
	return nil
}

// answer is a record we are about to send.
type answer struct {
	Name string // fully qualified; an instance name may contain spaces
	Type dnsmessage.Type
	TTL  uint32
	// Shared is true for records others may hold too (PTR): they are sent
	// without the cache-flush bit.
	Shared bool

	Ptr    string
	Target string
	Port   uint16
	TXT    []string
	Addr   netip.Addr
}

// key identifies the record's name, type and data, for known-answer
// suppression and deduplication.
func (a answer) key() string {
	var data string
	switch a.Type {
	case dnsmessage.TypePTR:
		data = strings.ToLower(a.Ptr)
	case dnsmessage.TypeSRV:
		data = fmt.Sprintf("%s:%d", strings.ToLower(a.Target), a.Port)
	case dnsmessage.TypeTXT:
		data = strings.Join(a.TXT, "\x00")
	default:
		data = a.Addr.WithZone("").String()
	}
	return fmt.Sprintf("%s|%d|%s", strings.ToLower(a.Name), a.Type, data)
}

// key is record's counterpart of answer.key.
func (r record) key() string {
	return answer{Name: r.Name, Type: r.Type, Ptr: r.Ptr, Target: r.Target, Port: r.Port, TXT: r.TXT, Addr: r.Addr}.key()
}

// message is an mDNS message to build.
type message struct {
	ID         uint16
	Response   bool
	Questions  []question
	Answers    []answer
	Additional []answer
	// Legacy drops the cache-flush bits, for a unicast reply to a legacy
	// querier (RFC 6762 section 6.7).
	Legacy bool
}

// pack builds the wire form of m.
func (m message) pack() ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{
		ID:            m.ID,
		Response:      m.Response,
		Authoritative: m.Response,
	})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	for _, q := range m.Questions {
		n, err := dnsmessage.NewName(q.Name)
		if err != nil {
			return nil, fmt.Errorf("question %q: %w", q.Name, err)
		}
		class := dnsmessage.ClassINET
		if q.Unicast {
			class |= unicastResponse
		}
		if err := b.Question(dnsmessage.Question{Name: n, Type: q.Type, Class: class}); err != nil {
			return nil, err
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if err := m.packRecords(&b, m.Answers); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	if err := m.packRecords(&b, m.Additional); err != nil {
		return nil, err
	}
	return b.Finish()
}

func (m message) packRecords(b *dnsmessage.Builder, as []answer) error {
	for _, a := range as {
		n, err := dnsmessage.NewName(a.Name)
		if err != nil {
			return fmt.Errorf("record %q: %w", a.Name, err)
		}
		class := dnsmessage.ClassINET
		if !a.Shared && !m.Legacy {
			class |= cacheFlush
		}
		h := dnsmessage.ResourceHeader{Name: n, Type: a.Type, Class: class, TTL: a.TTL}
		switch a.Type {
		case dnsmessage.TypePTR:
			t, err := dnsmessage.NewName(a.Ptr)
			if err != nil {
				return fmt.Errorf("PTR %q: %w", a.Ptr, err)
			}
			err = b.PTRResource(h, dnsmessage.PTRResource{PTR: t})
			if err != nil {
				return err
			}
		case dnsmessage.TypeSRV:
			t, err := dnsmessage.NewName(a.Target)
			if err != nil {
				return fmt.Errorf("SRV %q: %w", a.Target, err)
			}
			if err := b.SRVResource(h, dnsmessage.SRVResource{Target: t, Port: a.Port}); err != nil {
				return err
			}
		case dnsmessage.TypeTXT:
			if err := b.TXTResource(h, dnsmessage.TXTResource{TXT: a.TXT}); err != nil {
				return err
			}
		case dnsmessage.TypeA:
			if err := b.AResource(h, dnsmessage.AResource{A: a.Addr.As4()}); err != nil {
				return err
			}
		case dnsmessage.TypeAAAA:
			if err := b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: a.Addr.As16()}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("cannot pack record type %v", a.Type)
		}
	}
	return nil
}

// instanceLabel makes the DNS-SD instance label for a device: the device
// name, then the short DeviceID in parentheses so that two devices with the
// same name do not collide (we do not probe; see the package doc). Dots,
// which the DNS library cannot carry inside a label, and control characters
// become "-"; the result fits the 63-byte label limit.
func instanceLabel(name, short string) string {
	suffix := " (" + short + ")"
	clean := strings.Map(func(r rune) rune {
		if r == '.' || r < 0x20 || r == 0x7f || r == '\\' {
			return '-'
		}
		return r
	}, strings.ToValidUTF8(name, "-"))
	max := 63 - len(suffix)
	for len(clean) > max {
		_, clean = lastRuneTrim(clean)
	}
	return clean + suffix
}

// lastRuneTrim drops the last rune of s.
func lastRuneTrim(s string) (rune, string) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return rune(s[i]), s[:i]
		}
	}
	return 0, ""
}

// deviceName recovers the device name from an instance label made by
// instanceLabel; other labels (an Avahi-published service) are returned as
// they are.
func deviceName(label, short string) string {
	if n, ok := strings.CutSuffix(label, " ("+short+")"); ok && n != "" {
		return n
	}
	return label
}

// hostLabel cleans a host name for NAME.local: letters, digits and "-"
// only, lower case, at most 63 bytes.
func hostLabel(s string) string {
	s = strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "."), ".local"))
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 63 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}
