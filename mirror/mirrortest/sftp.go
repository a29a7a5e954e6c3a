// Package mirrortest serves SFTP in process on a loopback port, for tests
// and examples of code that mirrors to sftp:// targets (package mirror and
// the command line's `folder mirror`). It serves the real file system,
// with one user and password, and is not for anything but tests.
package mirrortest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTPServer is an SSH server with the SFTP subsystem on a loopback port.
type SFTPServer struct {
	cfg *ssh.ServerConfig
	l   net.Listener
	wg  sync.WaitGroup
}

// NewSFTPServer listens on 127.0.0.1 (a free port) and accepts user with
// password; its host key is new each time.
func NewSFTPServer(user, password string) (*SFTPServer, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if c.User() == user && string(pw) == password {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SFTPServer{cfg: cfg, l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go s.serve(c)
		}
	}()
	return s, nil
}

// Addr is the server's HOST:PORT.
func (s *SFTPServer) Addr() string { return s.l.Addr().String() }

// Dial is a mirror.Config.Dial that connects to the server whatever the
// address asked for.
func (s *SFTPServer) Dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, s.l.Addr().String())
}

// Close stops accepting and waits until every connection has ended.
func (s *SFTPServer) Close() {
	_ = s.l.Close()
	s.wg.Wait()
}

func (s *SFTPServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer ch.Close()
			for req := range creqs {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				_ = req.Reply(ok, nil)
				if ok {
					if srv, err := sftp.NewServer(ch); err == nil {
						_ = srv.Serve()
						_ = srv.Close()
					}
				}
			}
		}()
	}
}
