// Package sync is the peersync engine: it keeps a device's shared folders in
// step with its peers by composing gitstore (history), transport
// (authenticated connections) and crypto (identity).
//
// The common path:
//
//	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
//	e, err := sync.New(sync.Config{Home: home, Identity: id})
//	defer e.Close()
//	err = e.AddFolder(ctx, sync.FolderConfig{ID: "photos", Path: "/home/me/Photos"})
//	err = e.AddPeer(sync.PeerConfig{
//		Device:  laptopID,                        // crypto.ParsePeer(typed text)
//		Addrs:   []string{"192.0.2.10:44996"},    // optional
//		Folders: []string{"photos"},
//	})
//	go func() { for ev := range e.Events() { log.Println(ev) } }() // ends at Close
//	err = e.Run(ctx) // until ctx ends or Close
//
// # State
//
// Config.Home holds two JSON files, each written atomically (temporary file,
// fsync, rename):
//
//	config.json  what the user chose: device name, folders (ID, path,
//	             label, paused), peers (DeviceID, name, addresses, folder
//	             IDs, direction per folder, paused), the devices and folder
//	             offers ignored for good, the network settings
//	table.json   what the engine learned: for each peer and folder, the last
//	             revision the peer is known to have
//	pending.json devices that tried to connect and folders peers offer,
//	             waiting for an answer (see Sharing)
//
// The configuration is edited with SetName, AddFolder, RemoveFolder,
// PauseFolder, SetPeer (the whole entry of a peer: name, addresses,
// folders, directions), PausePeer and RemovePeer, and read with Folders,
// Peers and Peer. Every change is saved at once, reported as an
// EventConfigChanged, and followed by a running engine at once: a paused
// or removed peer's connection is closed, a paused folder's watcher stops,
// and a folder that starts to flow (resumed, newly shared, another
// direction) fetches what its peers last announced. RemoveFolder stops
// sharing a folder; its files and history stay on disk.
//
// The network settings (Settings: listen address, LAN discovery, the
// rendezvous server, STUN, TURN) start as the Config's Network, Discovery
// and NAT. SetSettings validates them (a *SettingsError names the field),
// saves them in config.json, where they win over the Config from then on,
// and applies them to a running engine: discovery starts or stops, a new
// rendezvous replaces the old one, the next ICE attempt uses the new STUN
// and TURN servers. The listen address is the one thing that waits for the
// next Run (RestartNeeded); Run may be called again after it returned. TURN
// passwords are write-only: Settings never returns them.
//
// One Engine owns a home: New takes an exclusive lock on
// <Home>/daemon.lock until Close (the OS drops it if the process dies), and
// a second owner gets a *HomeInUseError. A tool beside a running daemon
// opens the home with Config.Shared: it reads status and history and may
// change the configuration, but runs and commits nothing (ErrShared).
// Configuration changes go through a fresh read-modify-write of config.json.
// A running engine does not watch the file: a change meant for a running
// daemon goes through the daemon (its HTTP API, package httpapi, which the
// CLI uses while a daemon runs); a shared engine's edit reaches an owner
// only when it next starts. A corrupt file is an error, never silently
// reset.
//
// # Directions
//
// Each peer's entry gives, per folder, a Direction: both (the default),
// send (we announce and serve our history, and never fetch theirs) or
// receive (we fetch and apply theirs, and never announce nor serve ours:
// a want from that peer is refused). A receive-only folder keeps
// committing local edits to its own history; they are only never sent.
// FolderStatus.NotSent counts the files that differ from the last state
// received from a peer it only receives from (the head of that peer's
// last applied bundle, refs/peers/<ID>/main; with several such peers, the
// first in the configuration that sent one), and RevertFolder puts those
// files back to that state as new commits (gitstore.Store.Revert), so the
// local versions stay in the history (while nothing was received yet,
// NotSent counts every file). Directions are per peer: a folder may be sent
// to one peer and only received from another. Sealed bundles
// (ExportSealedBundle, ImportSealedBundle) follow the same directions.
//
// # Sharing: pending devices and folder offers
//
// Sharing a folder takes: A adds B's ID and picks the folder (SetPeer with
// B's address); B accepts A (AcceptDevice) and accepts the folder
// (AcceptFolder). Nothing else.
//
// Pending devices. A device not in the sync table that connects is recorded
// in Pending().Devices (DeviceID, first and last seen) and reported with an
// EventPendingDevice; IgnoreDevice refuses it for good without recording it
// again. Its name and address reach us as follows. A TLS refusal carries
// neither (the handshake only proves the DeviceID), so the gate lets such a
// device through the handshake at most once per 10 s (every other attempt is
// refused in the handshake, as before), and only to introduce itself: the
// engine reads the first frame of the device's first stream, its control
// frame {"type":"control","name":...,"port":N} (port: the port it listens
// on), records the name (without control characters, as folder labels from
// peers) and the address (the IP the connection came from, the announced
// port), reports another EventPendingDevice, and closes the connection with
// CloseNotAllowed. It reads nothing else from it, opens no stream and sends
// no frame: no data flows before acceptance. (The device sees a connection
// that ends at once, as "peer-connected" then "peer-disconnected".) Devices
// reaching us only through ICE are recorded without an introduction. The
// list is bounded (32 devices; the one seen least recently makes room) and a
// new device is recorded at most once per second; the others are refused
// unrecorded. AcceptDevice makes a pending device a peer, with the name it
// announced and the address it came from.
//
// Folder offers. Head frames carry the folder's label
// ({"type":"head","folder":...,"label":...,"head":...}); a head of a folder
// we do not share with that peer (we lack it, or share it with others
// only) becomes an offer in Pending().Folders (ID, label, from, when, the
// peer's head), reported with an EventFolderOffer; IgnoreFolder drops it
// for good. AcceptFolder creates the folder (by default
// <Config.DefaultFolderParent>/<label>), shares it with every peer that
// offered it, and fetches the head each offered at once. Offers are
// bounded (64; the oldest makes room). Pending devices and offers are kept
// in pending.json; the answers (ignored devices and offers) in config.json.
// The "port" and "label" fields are optional: an older engine ignores them
// and sends neither (its address is then the one its connection came from,
// its offers unlabelled).
//
// # Exchange protocol
//
// Devices connect with transport (QUIC or TCP, TLS 1.3, mutual DeviceID
// authentication); only devices in the sync table get in (and, to introduce
// themselves, pending devices: see above), and a peer may read or write
// only the folders shared with its DeviceID. If both sides dial at once,
// both keep the connection dialed by the smaller DeviceID.
//
// # Dialing
//
// Only peers that share a folder with us, neither of them paused (and the
// rendezvous), are dialed, every DialInterval while disconnected. A dial is
// a race with staggered starts, RFC 8305 style: TCP+TLS to the first known
// address, 150 ms later QUIC to it, then the next address, ICE through the
// rendezvous last; an attempt that fails at once starts the next at once.
// The first connection that authenticates wins; the others are cancelled or,
// if they still authenticate, closed. TCP leads because kernel TCP with BBR
// keeps its throughput under packet loss where quic-go's NewReno collapses
// (see transport's doc and BENCHMARKS.md); QUIC serves networks that drop
// TCP, ICE peers behind NATs. The rendezvous is dialed QUIC first, so its
// connection keeps the UDP socket's NAT mapping (the one ICE uses) open.
//
// A head start is not enough on a long, lossy path: at a 200 ms round trip
// QUIC's handshake (one round trip fewer) overtakes TCP's, and over 5 %
// loss quic-go moved ~50 KB/s where TCP with BBR moved ~4 MiB/s
// (BENCHMARKS.md). So a connection that ended up on QUIC while the peer has
// a known address is moved to TCP as soon as a TCP dial authenticates
// (retried with backoff, 10 s to 5 min, when it fails), and between two
// connections dialed both ways, TCP is kept over QUIC (then the one dialed
// by the smaller DeviceID). Several QUIC connections per peer were measured
// too (4 connections: 4× one, still 0.08× of TCP+BBR at 1 % loss) and
// rejected; quic-go offers no other congestion controller.
//
// The accepting side registers an incoming connection only once the dialer
// opens its control stream on it (the dialer does so at once on the
// winner, never on a loser), so a race's late loser never replaces the
// winner; a connection that opens no stream within 15 s is closed.
// Connections to peers that no longer share a folder with us are closed
// after Config.IdleTimeout. When this machine's interface addresses change
// (checked every DialInterval: another Wi-Fi, a VPN), every connection is
// closed and redialed at once rather than left to time out on a path that
// may be gone.
//
// Every stream starts with one JSON frame (transport framing: 4-byte
// big-endian length, payload; at most 64 KiB here) naming its purpose. This
// is protocol version 2 ("proto":2 in control and want frames; version 1
// staged the whole bundle before a {"size":N} header, and a fetch whose
// bundle took longer than 15 s to stage never completed):
//
//	{"type":"control","proto":2,"name":"laptop","port":44996}
//	    Each side opens one per connection, then sends on it, for every
//	    folder shared with that peer, on connect, after every change of
//	    its head, and every AnnounceInterval as a safety net:
//	{"type":"head","folder":"photos","label":"Photos","head":"<40 hex>"}
//
//	{"type":"want","proto":2,"folder":"photos","since":["<40 hex>", ...],
//	 "resume":{"bundle":"<32 hex>","offset":N}}
//	    Sent on a new stream by a side that received a head it does not
//	    have. since = our head and the peer's last head we applied (at most
//	    64); resume (optional) names a bundle we hold the first N bytes of.
//	    A head we have but not in our history is integrated without a want
//	    (gitstore.Store.IntegrateHead; see gitstore's "Merge rule").
//
// # Bundle stream
//
// The answer on a want stream is a sequence of frames, the first sent at
// once, before the sender has prepared anything:
//
//	{"type":"bundle","bundle":"<32 hex>","offset":N}
//	    The bundle's ID and where its data frames start: the resume offset
//	    if the sender still has that bundle, else 0 (the asker then drops
//	    what it held). Or, instead of it, {"type":"error","error":"..."}
//	    (e.g. the folder is not shared with the asker).
//	0x00 <1..262144 bytes>
//	    A data frame: the next bytes of a git bundle v2 (the objects
//	    reachable from the sender's head and not from since), in order.
//	{"type":"progress","produced":N}
//	    A keepalive while the sender has no data to send (it is still
//	    walking the history): sent at least every 5 s of silence.
//	{"type":"progress","produced":N,"size":N}
//	    Sent once, between data frames, as soon as the sender's bundle
//	    is complete: its total length, for the receiver's progress (a
//	    receiver that ignores "size" loses nothing).
//	{"type":"end","size":N,"sha256":"<64 hex>"}
//	    The trailer: the bundle's total length and the SHA-256 of all of
//	    it (resumed bytes included). The sender then closes the stream.
//	{"type":"nothing"}
//	    Instead of data: the asker already has everything, or the
//	    sender's sync window for the asker is closed (see Schedules; the
//	    sender announces its head again when the window opens).
//	{"type":"error","error":"..."}
//	    The sender failed; nothing of the bundle is to be used.
//
// The sender produces each bundle once, in a job per peer and folder: the
// store's WriteBundle writes into a file under Config.Home/tmp, and every
// want stream for it reads that file as it grows, so the first byte leaves
// as soon as it exists, a slow receiver never holds the folder's store, and
// a retry (a broken connection, a receiver that gave up) attaches to the
// job at the offset the receiver has instead of starting the walk again.
// A job nobody reads for 10 minutes is dropped, as is one whose folder is
// no longer shared with the peer; a want with another since list replaces
// it. At most two streams of one peer read one job at once. Peers that ask
// for the same bundle (same folder and since list, as several new devices
// in their first sync) while it is being produced, or later while its job
// is kept and our head has not moved since, share its job: the bundle is
// produced once and each stream reads the file at its own pace.
//
// The receiver writes the data frames into a gitstore.Incoming (the
// folder's own pack directory, so that the pack is written once), hashing
// them, and applies the bundle with gitstore.Store.ApplyIncoming only
// once the trailer matches: a truncated stream is an error that writes
// nothing (what arrived is kept for a resume), a wrong length or hash a
// refused bundle. Config.Fetch bounds every attempt in time: an overall
// deadline (30 minutes plus a second per MiB received), a minimum rate once
// data flows (1 KiB/s averaged over 60 s) and an idle limit (60 s without
// any frame). An abandoned attempt is reported (EventError with a
// *FetchError, FolderStatus.Fetches, the log) and retried after 1 s, 2 s,
// 4 s… up to six times, each retry resuming; then the peer's next
// announcement starts a new round. A transfer whose connection gives way to
// a newer one (closed as a duplicate: the move from QUIC to TCP, two dials
// crossing) is not abandoned and reports no error: the peer's announcement
// on the new connection fetches again, resuming. Frames longer than a data frame, data
// beyond Config.MaxBundleSize and frames out of order are refused bundles.
//
// ApplyBundle validates everything before any ref moves, fast-forwards or
// merges, and checks out; then the asker records the peer's head in the
// sync table and, if its own head changed, announces it to every peer
// sharing the folder (a merge made here travels back the same way). A peer
// whose bundle is refused is disconnected and an EventError reports why.
//
// # Schedules
//
// A sync window (Window: days of the week, From–To in local time, may span
// midnight) says when bundles go to and come from a peer: a global one
// (SetSchedule; nil = always, the default) and one per peer that overrides
// it (SetPeerSchedule; nil = follow the global one). Both are kept in
// config.json:
//
//	"schedule": {"days":["mon","tue","wed","thu","fri"],"from":"22:00","to":"06:00"}
//
// The window is read on the engine's clock (Config.Now) in its zone, the
// OS's (TZ); across a DST change it keeps its wall-clock hours (that night
// it is an hour shorter or longer). Outside a peer's window:
//
//   - no bundle comes from it: a head it announces is noted, not fetched;
//   - no bundle goes to it: its want is answered with a bundle frame and
//     "nothing";
//   - local scans, commits and the connection go on, and heads are still
//     announced both ways, so PeerStatus.Window says "closed until 22:00"
//     and PeerStatus.Waiting about how many of our changes wait for it;
//   - a bundle already flowing when the window closes is finished (the
//     check is made before a bundle starts, never in the middle); a retry
//     of a broken one waits for the window.
//
// The engine checks the windows every second: when one opens it emits
// EventWindowOpened, announces our heads to the peer and fetches what the
// peer announced meanwhile; when one closes, EventWindowClosed (Until:
// when it opens again). SyncNow(peer, folder) runs one exchange outside
// the window (zero peer and "" folder: all): it announces, fetches and
// serves until the folder is in step with the peer as far as this device
// knows, or for 10 minutes at most. The peer's own schedule still applies
// on its side.
//
// # Bandwidth limits
//
// SetLimits sets a RateLimit (bytes per second up and down; 0 = none)
// globally or per peer, kept in config.json ("limits": {"up":N,"down":N}).
// Both pace the data frames of bundle streams (golang.org/x/time/rate
// token buckets, a quarter second deep, starting empty): the sender waits
// before each frame (and sends frames of about a quarter second at the
// limit), the receiver after each frame it reads, so TCP's or QUIC's flow
// control slows the sender. The global buckets are shared by all peers; a
// peer's stream waits on both, so the stricter wins. Changes apply to
// streams already running. Control traffic is not limited. A down limit
// below the sender's Fetch.MinRate (1 KiB/s by default) makes a fetch too
// slow for this engine's own limits: keep limits above it.
// BenchmarkRateLimit measures the achieved rate against the limit.
//
// # Progress
//
// Every bundle transfer is tracked per peer, folder and direction
// (Progress: bytes done and total, objects done and total, rate, ETA):
// EventProgress at most every 250 ms per transfer, and PeerStatus.Progress
// while it runs. The receiver learns the total from the sender's
// progress frame with "size"; the object count comes from the pack
// header in the bundle's first bytes, objects done are estimated from the
// bytes. A long scan (one that runs over a second, e.g. the first scan
// of a big folder) reports the files and bytes it has read through
// gitstore's Config.ScanProgress: EventScanProgress at most every 250 ms
// and FolderStatus.Scan until it ends.
// Engine.Traffic sums, since Run started, the bundle bytes received and
// sent as they flow (resumed and abandoned transfers included) and, on a
// rendezvous, the signaling messages relayed: counters for metrics.
//
// # Conflict copies
//
// Conflict copies (gitstore's "Merge rule") are listed by Engine.Conflicts
// with who made each side and when; Engine.ResolveConflict keeps one side
// (the copy's content goes to the original path, or the original stays)
// and deletes the copy, as ordinary commits announced like a local edit.
// A copy's maker known only by the DeviceID prefix in the copy's name is
// named after this device or the peer whose ID starts so.
//
// # Inside
//
// The Engine holds one folder value per shared folder (its open store,
// whether it is stopped or paused and why, its file watcher, its fetches
// per peer), one peer value per device (its connection with the heads the
// peer last announced on it, its dialing and backoff state) and one
// sharing value (the pending devices and folder offers), all guarded by
// Engine.mu. What a Run opens (transport, discovery, rendezvous server and
// client, bundle jobs, and the schedule, limit and progress state) is one
// runState;
// every goroutine a Run starts is in the Engine's wait group, which Run
// waits for before it returns, and Close waits for Run.
//
// # Folder guard
//
// A folder whose <path>/.peersync marker is missing (a disk not mounted, a
// folder moved) is stopped with an EventFolderStopped and retried on every
// tick; it is never read as "every file was deleted". Nothing is fetched
// into it meanwhile; when the marker is back, an EventFolderResumed says
// so, and the folder announces its head and fetches what its peers
// announced while it was away.
//
// # Mailbox
//
// Two devices that are never online together still sync a folder the
// hosted server does not have, through the server's blind mailbox. It is
// on by default when both use the same server as rendezvous
// (Config.Mailbox.Off turns it off on either side):
//
//   - After every scan tick, a device registered at its rendezvous looks at
//     each peer that is not connected and each folder it sends that peer
//     and does not share with the server (a folder the server shares, it
//     mirrors). If our head is neither what the sync table says the peer
//     has nor what we last deposited for it, it writes the bundle from the
//     peer's known head to ours, seals it to the peer (crypto.Seal: age,
//     signed by us; inside the seal "peersync-mailbox/1", a "folder ID"
//     line and a blank line precede the bundle) and deposits it, replacing
//     its previous deposit for that peer and folder. So the box holds one
//     bundle per sender and folder, which applies on its own. Deposits are
//     recorded in <Home>/mailbox-sent.json; EventMailboxDeposited reports
//     each. A deposit the server refuses (over the quota) is reported as
//     an EventError and not tried again until our head moves.
//   - The server (ServeRendezvous) keeps each deposit in <Home>/mailbox
//     (package mailbox) without being able to read it: it checks that the
//     depositor is in its table, the recipient too, and that the stream
//     starts like a sealed one; it knows sizes and DeviceIDs, nothing else.
//     Per recipient: a quota of bytes and of deposits, and an expiry
//     (Config.Mailbox.Limits), the oldest dropped first.
//     Engine.MailboxBytes is what it holds.
//   - A device lists its box when it registers at the rendezvous and after
//     every scan tick, and takes the deposits oldest first: it fetches one
//     into Home/tmp, opens and verifies all of it (crypto.OpenVerified)
//     before anything is used, checks that the verified sender is a peer
//     it receives the folder from, applies the bundle like any other
//     (ImportBundle: validated before anything is written), records the
//     sender's head in the sync table, and acknowledges, which deletes the
//     deposit at the server and leaves its sender a receipt: before its
//     next deposits, the sender fetches its receipts and records the head
//     of each applied deposit as the peer's in the sync table (unless it
//     learned something newer about the peer meanwhile), so a deposit
//     carries only what the peer does not have, even in a one-way flow.
//     (Receipts live in the server's memory: after a server restart a
//     sender learns nothing of earlier ones, and its deposits start from
//     an older head until the peers next meet or the peer sends back.)
//     A deposit that cannot be opened or verified
//     (forged, damaged) or whose bundle is refused is reported as an
//     EventError with a *MailboxError and deleted; one from a device not
//     in our table, or for a folder we do not (yet) receive from it, or
//     whose sync window is closed, is left at the server and looked at
//     again as soon as the configuration changes (the sender accepted, the
//     folder shared), else a minute later.
//
// The mailbox protocol runs on a stream starting with
// {"type":"mailbox"}: one request and its answer (deposit, list, get, ack,
// receipts; see mailbox.go). A deposited head may be delivered more than once (a
// replay adds nothing: a bundle names its prerequisites); the peers'
// direct exchange takes over as soon as they meet.
package sync
