package mirror_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/peersync/peersync/mirror"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Example mirrors a folder to an SFTP target, changes the folder and
// mirrors it again. The target here is an SFTP server in this process on a
// loopback port, which Config.Dial connects to whatever the URL's host;
// with a real host, leave Dial nil.
func Example() {
	base, err := os.MkdirTemp("", "mirror-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)
	folder, target, state := filepath.Join(base, "Notes"), filepath.Join(base, "www"), filepath.Join(base, "state")
	_ = os.MkdirAll(filepath.Join(folder, "2026"), 0o755)
	_ = os.MkdirAll(filepath.Join(folder, ".peersync"), 0o755) // the history: never mirrored
	_ = os.WriteFile(filepath.Join(folder, "todo.txt"), []byte("buy milk\n"), 0o644)
	_ = os.WriteFile(filepath.Join(folder, "2026", "trip.txt"), []byte("Lisbon\n"), 0o644)

	srv, err := newLoopbackSFTPServer("demo", "s3cret")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.close()

	m, err := mirror.New(mirror.Config{
		URL:      "sftp://demo:s3cret@files.example.com" + target,
		StateDir: state,
		Dial:     srv.dial,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println("password shown:", strings.Contains(m.String(), "s3cret"))

	ctx := context.Background()
	res, err := m.Sync(ctx, folder, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("first sync: %d uploaded, %d deleted\n", res.Uploaded, res.Deleted)

	_ = os.WriteFile(filepath.Join(folder, "todo.txt"), []byte("buy milk\ncall Ana\n"), 0o644)
	_ = os.Remove(filepath.Join(folder, "2026", "trip.txt"))
	res, err = m.Sync(ctx, folder, func(p mirror.Progress) {
		if p.FilesDone == p.FilesTotal {
			fmt.Printf("progress: %d/%d files, %d/%d bytes\n", p.FilesDone, p.FilesTotal, p.BytesDone, p.BytesTotal)
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("second sync: %d uploaded, %d deleted, %d unchanged\n", res.Uploaded, res.Deleted, res.Unchanged)

	todo, _ := os.ReadFile(filepath.Join(target, "todo.txt"))
	_, tripErr := os.Stat(filepath.Join(target, "2026"))
	_, histErr := os.Stat(filepath.Join(target, ".peersync"))
	fmt.Printf("target todo.txt: %q\n", todo)
	fmt.Println("emptied directory removed:", os.IsNotExist(tripErr))
	fmt.Println("history mirrored:", histErr == nil)
	// Output:
	// password shown: false
	// first sync: 2 uploaded, 0 deleted
	// progress: 2/2 files, 18/18 bytes
	// second sync: 1 uploaded, 1 deleted, 0 unchanged
	// target todo.txt: "buy milk\ncall Ana\n"
	// emptied directory removed: true
	// history mirrored: false
}

// loopbackSFTPServer is an SSH server with the SFTP subsystem, in process,
// serving the real file system on a loopback port.
type loopbackSFTPServer struct {
	cfg *ssh.ServerConfig
	l   net.Listener
	wg  sync.WaitGroup
}

func newLoopbackSFTPServer(user, password string) (*loopbackSFTPServer, error) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(key)
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if c.User() == user && string(pw) == password {
			return nil, nil
		}
		return nil, fmt.Errorf("wrong password")
	}}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &loopbackSFTPServer{cfg: cfg, l: l}
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

// dial is a Config.Dial that connects to the server whatever the address.
func (s *loopbackSFTPServer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, s.l.Addr().String())
}

// close stops accepting and waits until every connection has ended.
func (s *loopbackSFTPServer) close() {
	_ = s.l.Close()
	s.wg.Wait()
}

func (s *loopbackSFTPServer) serve(c net.Conn) {
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
