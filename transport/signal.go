package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/pion/ice/v4"
)

// MaxSignalSize is the largest ICE signaling message DialICE and AcceptICE
// send or accept.
const MaxSignalSize = 16 << 10

// signalVersion is the signaling format version this package writes and
// reads ("v" in the JSON). A message with another version is rejected.
const signalVersion = 1

// Types of signalMsg.
const (
	signalOffer  = "offer"  // from the dialing (ICE-controlling) side
	signalAnswer = "answer" // from the accepting (ICE-controlled) side
)

// Limits on the fields of a signalMsg (see doc.go, "NAT traversal").
const (
	maxSignalCandidates  = 32
	maxCandidateLen      = 256
	minUfragLen          = 4 // RFC 8445 section 5.3
	minPwdLen            = 22
	maxCredentialLen     = 256
	signalSessionHexSize = 32 // 16 random bytes, lowercase hex
)

// ErrBadSignal is wrapped by the errors of a malformed signaling message:
// from DialICE, AcceptICE and SignalSession.
var ErrBadSignal = errors.New("transport: bad signaling message")

// signalMsg is one ICE signaling message: an offer (DialICE) or an answer
// (AcceptICE), carrying the sender's ICE credentials and all its candidates
// (no trickling). Its JSON form is the wire format; see doc.go.
type signalMsg struct {
	Version    int      `json:"v"`
	Type       string   `json:"type"`       // signalOffer or signalAnswer
	Session    string   `json:"session"`    // 32 lowercase hex digits, chosen by the offerer, echoed in the answer
	Ufrag      string   `json:"ufrag"`      // ICE username fragment, 4–256 ice-chars
	Pwd        string   `json:"pwd"`        // ICE password, 22–256 ice-chars
	Candidates []string `json:"candidates"` // RFC 8839 candidate-attribute values, UDP, IP literals only
}

// parseSignal decodes and validates a signaling message from the network.
// Unknown JSON fields are ignored (a later minor addition); anything else
// out of shape is an error wrapping ErrBadSignal: more than MaxSignalSize
// bytes, another version or type, a malformed session or credential, more
// than 32 candidates, or a candidate that does not parse, is not UDP, or
// names a host instead of an IP address (no DNS or mDNS lookups are ever
// made for a peer's candidates).
func parseSignal(b []byte) (*signalMsg, error) {
	if len(b) > MaxSignalSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadSignal, len(b), MaxSignalSize)
	}
	var s signalMsg
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignal, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignal, err)
	}
	return &s, nil
}

func (s *signalMsg) validate() error {
	if s.Version != signalVersion {
		return fmt.Errorf("version %d, want %d", s.Version, signalVersion)
	}
	if s.Type != signalOffer && s.Type != signalAnswer {
		return fmt.Errorf("type %q", s.Type)
	}
	if !isSessionID(s.Session) {
		return fmt.Errorf("session %q is not %d lowercase hex digits", s.Session, signalSessionHexSize)
	}
	if !isICEChars(s.Ufrag, minUfragLen) {
		return fmt.Errorf("ufrag %q is not %d–%d ice-chars", s.Ufrag, minUfragLen, maxCredentialLen)
	}
	if !isICEChars(s.Pwd, minPwdLen) {
		return fmt.Errorf("pwd is not %d–%d ice-chars", minPwdLen, maxCredentialLen)
	}
	if len(s.Candidates) > maxSignalCandidates {
		return fmt.Errorf("%d candidates, more than %d", len(s.Candidates), maxSignalCandidates)
	}
	for _, c := range s.Candidates {
		if _, err := parseCandidate(c); err != nil {
			return err
		}
	}
	return nil
}

// parseCandidate parses one candidate of a signalMsg, enforcing our limits.
func parseCandidate(raw string) (ice.Candidate, error) {
	if len(raw) > maxCandidateLen {
		return nil, fmt.Errorf("candidate of %d bytes, more than %d", len(raw), maxCandidateLen)
	}
	c, err := ice.UnmarshalCandidate(raw)
	if err != nil {
		return nil, fmt.Errorf("candidate %q: %v", raw, err)
	}
	if !c.NetworkType().IsUDP() {
		return nil, fmt.Errorf("candidate %q: not UDP", raw)
	}
	ip, err := netip.ParseAddr(c.Address())
	if err != nil || ip.Zone() != "" {
		return nil, fmt.Errorf("candidate %q: address is not an IP literal", raw)
	}
	if c.Port() <= 0 || c.Port() > 0xffff {
		return nil, fmt.Errorf("candidate %q: bad port", raw)
	}
	switch c.Type() {
	case ice.CandidateTypeHost, ice.CandidateTypeServerReflexive,
		ice.CandidateTypePeerReflexive, ice.CandidateTypeRelay:
	default:
		return nil, fmt.Errorf("candidate %q: unknown type", raw)
	}
	return c, nil
}

func (s *signalMsg) marshal() ([]byte, error) {
	return json.Marshal(s)
}

func isSessionID(s string) bool {
	if len(s) != signalSessionHexSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isICEChars reports whether s is min..maxCredentialLen ice-chars
// (ALPHA / DIGIT / "+" / "/", RFC 8445 section 15.4).
func isICEChars(s string, min int) bool {
	if len(s) < min || len(s) > maxCredentialLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/'
		if !ok {
			return false
		}
	}
	return true
}

// SignalSession reads an ICE signaling message (a Signaling carries them)
// far enough to route it: its session (chosen by the offer, echoed by its
// answer) and whether it is an offer (from DialICE, to be passed to
// AcceptICE) or an answer (to the DialICE waiting for that session). It
// validates the whole message; errors wrap ErrBadSignal.
func SignalSession(msg []byte) (session string, offer bool, err error) {
	s, err := parseSignal(msg)
	if err != nil {
		return "", false, err
	}
	return s.Session, s.Type == signalOffer, nil
}
