package sync

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/discovery"
	"github.com/peersync/peersync/transport"
)

// Settings are the network settings a person edits (the desktop's Settings
// page, PUT /rest/settings): where the engine listens, LAN discovery, the
// rendezvous server, STUN and TURN. Until SetSettings saves them, the
// engine's settings are those of its Config (Network, Discovery, NAT);
// once saved, they are kept in config.json and take precedence over the
// Config the Engine is created with, on this and every later start.
//
// SetSettings applies discovery, the rendezvous, STUN and TURN to a running
// engine at once; the listen address takes effect at the next Run
// (Engine.RestartNeeded says when a Run is listening elsewhere).
type Settings struct {
	// ListenAddr is the UDP (and TCP) "host:port" to listen on; the host
	// may be empty (every interface) and the port 0 (any free port).
	ListenAddr string `json:"listenAddr"`
	// Discovery turns LAN discovery on (Config.Discovery.Enabled).
	Discovery bool `json:"discovery"`
	// RendezvousAddr is the rendezvous server's "host:port"; "" = none.
	RendezvousAddr string `json:"rendezvousAddr,omitempty"`
	// RendezvousDevice is the server's DeviceID, which pins it; "" leaves
	// it unpinned (see RendezvousConfig). Needs RendezvousAddr.
	RendezvousDevice string `json:"rendezvousDevice,omitempty"`
	// STUN are "host:port" STUN servers; empty means the rendezvous host
	// on port 3478 (none without a rendezvous).
	STUN []string `json:"stun"`
	// TURN are the relays ICE may use.
	TURN []TURNSetting `json:"turn"`
}

// TURNSetting is one TURN relay of Settings. Its password is write-only:
// Engine.Settings never returns it (HasPass says one is saved), and
// SetSettings keeps the saved password of the same user at the same
// address when Pass is "".
type TURNSetting struct {
	Addr string `json:"addr"` // "host:port"
	User string `json:"user"`
	// Pass is the password; in config.json, and in SetSettings' argument.
	Pass string `json:"pass,omitempty"`
	// HasPass, in Settings' answer, says a password is saved.
	HasPass bool `json:"hasPass,omitempty"`
}

// SettingsError is SetSettings' answer to a value that is not valid: Field
// names the field in Settings' JSON spelling ("listenAddr",
// "rendezvousAddr", "rendezvousDevice", "stun", "turn").
type SettingsError struct {
	Field string
	Err   error
}

func (e *SettingsError) Error() string { return fmt.Sprintf("sync: settings: %s: %v", e.Field, e.Err) }

// Unwrap returns the reason.
func (e *SettingsError) Unwrap() error { return e.Err }

func settingsErr(field, format string, args ...any) *SettingsError {
	return &SettingsError{Field: field, Err: fmt.Errorf(format, args...)}
}

// clone returns a copy of s that shares no slice with it.
func (s Settings) clone() Settings {
	s.STUN = slices.Clone(s.STUN)
	s.TURN = slices.Clone(s.TURN)
	return s
}

// validate checks every field; the first fault is a *SettingsError.
func (s Settings) validate() error {
	if err := checkHostPort(s.ListenAddr, true); err != nil {
		return &SettingsError{Field: "listenAddr", Err: err}
	}
	if s.RendezvousAddr == "" && s.RendezvousDevice != "" {
		return settingsErr("rendezvousAddr", "a rendezvous DeviceID needs the server's address")
	}
	if s.RendezvousAddr != "" {
		if err := checkHostPort(s.RendezvousAddr, false); err != nil {
			return &SettingsError{Field: "rendezvousAddr", Err: err}
		}
	}
	if s.RendezvousDevice != "" {
		if _, err := crypto.ParseDeviceID(s.RendezvousDevice); err != nil {
			return &SettingsError{Field: "rendezvousDevice", Err: err}
		}
	}
	for _, a := range s.STUN {
		if err := checkHostPort(a, false); err != nil {
			return settingsErr("stun", "%q: %w", a, err)
		}
	}
	for _, t := range s.TURN {
		if err := checkHostPort(t.Addr, false); err != nil {
			return settingsErr("turn", "%q: %w", t.Addr, err)
		}
		if t.User == "" {
			return settingsErr("turn", "%s: a user name is required", t.Addr)
		}
		if t.Pass == "" {
			return settingsErr("turn", "%s@%s: a password is required", t.User, t.Addr)
		}
	}
	return nil
}

// checkHostPort checks a "host:port": the port a number (0 only when
// listen), the host non-empty unless listen, and an IP address when
// listen (a name would resolve at every start).
func checkHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !listen) {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	switch {
	case listen && host != "":
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("listen host %q is not an IP address (leave it empty for every interface)", host)
		}
	case !listen && host == "":
		return fmt.Errorf("%q has no host", addr)
	}
	return nil
}

// rendezvous returns the rendezvous these settings name (nil: none). They
// are valid.
func (s Settings) rendezvous() *RendezvousConfig {
	if s.RendezvousAddr == "" {
		return nil
	}
	r := &RendezvousConfig{Addr: s.RendezvousAddr}
	if s.RendezvousDevice != "" {
		r.Device, _ = crypto.ParseDeviceID(s.RendezvousDevice)
	}
	return r
}

// configSettings returns the settings a Config gives (defaults applied).
func configSettings(c Config) Settings {
	s := Settings{ListenAddr: c.Network.ListenAddr, Discovery: c.Discovery.Enabled, STUN: slices.Clone(c.NAT.STUN)}
	if r := c.NAT.Rendezvous; r != nil {
		s.RendezvousAddr = r.Addr
		if !r.Device.IsZero() {
			s.RendezvousDevice = r.Device.String()
		}
	}
	for _, t := range c.NAT.TURN {
		s.TURN = append(s.TURN, TURNSetting{Addr: t.Addr, User: t.User, Pass: t.Pass})
	}
	return s
}

// settingsLocked returns the settings in force, passwords included:
// config.json's if saved, else the Config's. e.mu must be held.
func (e *Engine) settingsLocked() Settings {
	if s := e.conf.Network; s != nil {
		return s.clone()
	}
	return configSettings(e.cfg)
}

// noteSavedSettings logs the settings saved in config.json that differ
// from the Config's (a command line's --listen, say): the saved ones are
// used, and the log says so.
func (e *Engine) noteSavedSettings() {
	saved := e.conf.Network
	if saved == nil {
		return
	}
	c := configSettings(e.cfg)
	if saved.ListenAddr != c.ListenAddr || saved.Discovery != c.Discovery ||
		saved.RendezvousAddr != c.RendezvousAddr || saved.RendezvousDevice != c.RendezvousDevice {
		e.log.Info("using the network settings saved in config.json (Settings), not the Config's",
			"listen", saved.ListenAddr, "discovery", saved.Discovery, "rendezvous", saved.RendezvousAddr)
	}
}

// rendezvousLocked is the rendezvous server in force (nil: none). e.mu
// must be held.
func (e *Engine) rendezvousLocked() *RendezvousConfig {
	if s := e.conf.Network; s != nil {
		return s.rendezvous()
	}
	return e.cfg.NAT.Rendezvous
}

// rendezvous is rendezvousLocked for callers without e.mu.
func (e *Engine) rendezvous() *RendezvousConfig {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rendezvousLocked()
}

// Settings returns the network settings in force, without the TURN
// passwords (TURNSetting.HasPass says which are saved).
func (e *Engine) Settings() Settings {
	e.mu.Lock()
	s := e.settingsLocked()
	e.mu.Unlock()
	if s.STUN == nil {
		s.STUN = []string{}
	}
	if s.TURN == nil {
		s.TURN = []TURNSetting{}
	}
	for i := range s.TURN {
		s.TURN[i].HasPass, s.TURN[i].Pass = s.TURN[i].Pass != "", ""
	}
	return s
}

// SetSettings validates s (a *SettingsError names the faulty field), saves
// it in config.json and applies it to a running engine: LAN discovery
// starts or stops, a new rendezvous server replaces the old one (whose
// connection is closed), and STUN and TURN serve the next ICE attempt. A
// new listen address waits for the next Run (see RestartNeeded). A TURN
// entry without a password keeps the one saved for its user and address.
func (e *Engine) SetSettings(s Settings) error {
	s = s.clone()
	s.ListenAddr = strings.TrimSpace(s.ListenAddr)
	s.RendezvousAddr = strings.TrimSpace(s.RendezvousAddr)
	s.RendezvousDevice = strings.TrimSpace(s.RendezvousDevice)
	e.mu.Lock()
	saved := e.settingsLocked().TURN
	e.mu.Unlock()
	for i, t := range s.TURN {
		t.HasPass = false
		if t.Pass == "" {
			if j := slices.IndexFunc(saved, func(o TURNSetting) bool { return o.Addr == t.Addr && o.User == t.User }); j >= 0 {
				t.Pass = saved[j].Pass
			}
		}
		s.TURN[i] = t
	}
	if err := s.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	before := e.settingsLocked()
	e.mu.Unlock()
	if err := e.update(func(c *config) error { c.Network = &s; return nil }); err != nil {
		return err
	}
	e.applySettings(before, s)
	return nil
}

// applySettings brings a running engine from settings old to now: LAN
// discovery on or off, and the rendezvous (the old one's connection
// closes, which ends its registration; the dial loop reaches the new one).
// STUN and TURN need nothing: iceConfig reads them at each attempt.
func (e *Engine) applySettings(old, now Settings) {
	var closeRV *transport.Conn
	var stopDisc *discovery.Discoverer
	e.mu.Lock()
	if old.RendezvousAddr != now.RendezvousAddr || old.RendezvousDevice != now.RendezvousDevice {
		if pc := e.connLocked(e.rvPeer); !e.rvPeer.IsZero() && pc != nil {
			closeRV = pc.c
		}
		e.rvPeer = rendezvousDevice(now.rendezvous())
	}
	if r := e.run; r != nil && old.Discovery != now.Discovery {
		if now.Discovery {
			if err := e.startDiscoveryLocked(); err != nil {
				e.log.Warn("LAN discovery", "err", err)
			}
		} else {
			stopDisc, r.disc = r.disc, nil
		}
	}
	e.mu.Unlock()
	if closeRV != nil {
		_ = closeRV.CloseWithError(transport.CloseNotAllowed, "rendezvous server changed")
	}
	if stopDisc != nil {
		_ = stopDisc.Close() // ends its Run and so onDiscovered
	}
	e.kickDial()
}

// startDiscoveryLocked starts LAN discovery for the running engine (no-op
// if it runs) and its two goroutines, which end when the Run ends or
// discovery is turned off (its Close). e.mu must be held, which orders
// the goroutines' start before Run's wait: Run takes e.mu once after its
// context ends and before it waits, and a context already ended starts
// nothing.
func (e *Engine) startDiscoveryLocked() error {
	r := e.run
	if r == nil || r.disc != nil || r.ctx.Err() != nil {
		return nil
	}
	port := 0
	if ua, ok := r.tr.LocalAddr().(*net.UDPAddr); ok {
		port = ua.Port
	}
	disc, err := discovery.New(discovery.Config{
		Device:   e.DeviceID(),
		Name:     e.nameLocked(),
		Port:     port,
		Announce: !e.cfg.Discovery.BrowseOnly,
		HostName: e.cfg.Discovery.HostName,
		Logger:   e.log,

		Interfaces: e.discoveryInterfaces(),
	})
	if err != nil {
		return fmt.Errorf("sync: discovery: %w", err)
	}
	r.disc = disc
	ctx, tr := r.ctx, r.tr
	e.wg.Go(func() {
		if err := disc.Run(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, discovery.ErrClosed) {
			e.log.Warn("discovery stopped", "err", err)
		}
	})
	e.wg.Go(func() { e.onDiscovered(ctx, tr, disc) })
	return nil
}

// discoveryInterfaces is nil (every suitable interface), or none for the
// tests that ask (testHooks.noMulticast).
func (e *Engine) discoveryInterfaces() []net.Interface {
	if h := e.cfg.test; h != nil && h.noMulticast {
		return []net.Interface{}
	}
	return nil
}

// RestartNeeded reports whether Run is active and listens elsewhere than
// the settings say (a listen address changed by SetSettings waits for the
// next Run).
func (e *Engine) RestartNeeded() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.run != nil && e.run.listen != e.settingsLocked().ListenAddr
}

// iceConfig is the STUN and TURN servers in force: the settings' STUN list,
// or the rendezvous host on port 3478 when it is empty.
func (e *Engine) iceConfig() transport.ICEConfig {
	e.mu.Lock()
	s := e.settingsLocked()
	saved := e.conf.Network != nil
	e.mu.Unlock()
	stun := s.STUN
	if len(stun) == 0 && saved {
		if r := s.rendezvous(); r != nil {
			host, _, _ := net.SplitHostPort(r.Addr)
			stun = []string{net.JoinHostPort(host, "3478")}
		}
	}
	var turn []transport.TURNServer
	for _, t := range s.TURN {
		turn = append(turn, transport.TURNServer{Addr: t.Addr, User: t.User, Pass: t.Pass})
	}
	return transport.ICEConfig{STUNServers: stun, TURNServers: turn}
}
