// Package peersync is an SDK for peer-to-peer folder sync in which git is the
// history engine.
//
// A person keeps folders in step across their own machines — laptops behind
// home NATs, an office PC, a hosted server — with every change to every file
// kept as its own git commit, so any single file can be rolled back without
// touching the others. Devices exchange changes as incremental git bundles
// over QUIC or TLS over TCP, authenticated in both directions by the devices'
// Ed25519 keys.
//
// # Packages
//
// The packages are independent; only sync (and the example programs)
// compose them (the layer rule is in docs/design.md, section 2, and checked
// by TestLayers):
//
//	crypto     device identity (Ed25519, OpenSSH key files), DeviceID, TLS certificates
//	gitstore   one folder's history: scan → one commit per file, bundles, merge, safe checkout
//	transport  authenticated, encrypted connections between DeviceIDs: QUIC on one UDP socket, TLS over TCP, ICE
//	discovery  LAN discovery of peers with mDNS / DNS-SD
//	sync       the Engine: sync table, exchange protocol, scheduling, events, persistence
//	deviceid   the DeviceID type and its printed form, a leaf every layer may import
//
// examples/desktop is the user's client (CLI and local web UI);
// examples/server is the hosted peer.
//
// # Embedding
//
// An application that wants its folders synced embeds a sync.Engine:
//
//	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
//	e, err := sync.New(sync.Config{Home: home, Identity: id})
//	err = e.AddFolder(ctx, sync.FolderConfig{ID: "notes", Path: "/home/me/Notes"})
//	peer, err := crypto.ParsePeer("ssh-ed25519 AAAA…") // or a DeviceID
//	err = e.AddPeer(sync.PeerConfig{Device: peer, Addrs: []string{"192.0.2.7:44996"}, Folders: []string{"notes"}})
//	go func() { for ev := range e.Events() { fmt.Println(ev) } }()
//	err = e.Run(ctx)
//
// The history of a synced folder is an ordinary git repository in
// <folder>/.peersync: `git --git-dir=.peersync --work-tree=. log` works.
package peersync
