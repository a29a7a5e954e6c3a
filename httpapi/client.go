package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/sync"
)

// Client calls the API of a running daemon (the CLI uses it while a
// daemon owns the home; tests and other programs may too).
type Client struct {
	// BaseURL is where the API listens, e.g. "http://127.0.0.1:44997".
	BaseURL string
	// Key is the API key (LoadKey).
	Key string
	// HTTP is the client used; nil = http.DefaultClient.
	HTTP *http.Client
}

// StatusError is a response outside 2xx: its status and the API's error
// text.
type StatusError struct {
	Code    int
	Message string
}

// Error returns the API's error text and the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) request(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", c.Key)
	return req, nil
}

// Do sends in (if not nil) as JSON to method path (e.g. "/rest/status")
// and decodes the answer into out (if not nil). A status outside 2xx is a
// *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	res, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request with the key and the extra headers (name, value,
// ...) and returns a 2xx response, whose body the caller closes.
func (c *Client) send(ctx context.Context, method, path string, in any, hdr ...string) (*http.Response, error) {
	req, err := c.request(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(res); err != nil {
		res.Body.Close()
		return nil, err
	}
	return res, nil
}

func checkStatus(res *http.Response) error {
	if res.StatusCode/100 == 2 {
		return nil
	}
	var e Error
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
	}
	return &StatusError{Code: res.StatusCode, Message: e.Error}
}

// Status is GET /rest/status.
func (c *Client) Status(ctx context.Context) (sync.Status, error) {
	var st sync.Status
	err := c.Do(ctx, "GET", "/rest/status", nil, &st)
	return st, err
}

// Device is GET /rest/device.
func (c *Client) Device(ctx context.Context) (Device, error) {
	var d Device
	err := c.Do(ctx, "GET", "/rest/device", nil, &d)
	return d, err
}

// SetName is PATCH /rest/device {"name"}.
func (c *Client) SetName(ctx context.Context, name string) error {
	return c.Do(ctx, "PATCH", "/rest/device", map[string]string{"name": name}, nil)
}

// AddFolder is POST /rest/folders.
func (c *Client) AddFolder(ctx context.Context, f NewFolder) (sync.FolderStatus, error) {
	var fs sync.FolderStatus
	err := c.Do(ctx, "POST", "/rest/folders", f, &fs)
	return fs, err
}

// Scan is POST /rest/folders/{id}/scan: the commits the scan made.
func (c *Client) Scan(ctx context.Context, folder string, allowMassDelete bool) ([]gitstore.Change, error) {
	path := "/rest/folders/" + url.PathEscape(folder) + "/scan"
	if allowMassDelete {
		path += "?allow-mass-delete=true"
	}
	var out Changes
	err := c.Do(ctx, "POST", path, nil, &out)
	return out.Changes, err
}

// History is GET /rest/folders/{id}/history.
func (c *Client) History(ctx context.Context, folder, path string, limit int) ([]gitstore.Change, error) {
	q := url.Values{}
	if path != "" {
		q.Set("path", path)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out Changes
	err := c.Do(ctx, "GET", "/rest/folders/"+url.PathEscape(folder)+"/history?"+q.Encode(), nil, &out)
	return out.Changes, err
}

// Restore is POST /rest/folders/{id}/restore: the commit made (none if
// the file already had that content).
func (c *Client) Restore(ctx context.Context, folder, path string, rev gitstore.Hash) ([]gitstore.Change, error) {
	var out Changes
	err := c.Do(ctx, "POST", "/rest/folders/"+url.PathEscape(folder)+"/restore", RestoreRequest{Path: path, Rev: rev}, &out)
	return out.Changes, err
}

// SetPeer is PUT /rest/peers/{device}: add the peer or replace its entry.
func (c *Client) SetPeer(ctx context.Context, p sync.PeerConfig) (sync.PeerStatus, error) {
	var ps sync.PeerStatus
	err := c.Do(ctx, "PUT", "/rest/peers/"+p.Device.String(), p, &ps)
	return ps, err
}

// RemovePeer is DELETE /rest/peers/{device}.
func (c *Client) RemovePeer(ctx context.Context, d crypto.DeviceID) error {
	return c.Do(ctx, "DELETE", "/rest/peers/"+d.String(), nil, nil)
}

// EventGap is the Kind of the EventJSON that /rest/events sends when the
// ring no longer holds events the client asked for (Missed says how
// many): reload the status.
const EventGap sync.EventKind = "gap"

// Events streams GET /rest/events to fn: the events after ID after (0:
// every event the ring holds; below 0: from the next event on; to resume,
// the ID of the last event fn got), until ctx ends, the stream ends (then
// Events returns io.EOF) or fn returns an error, which Events returns.
func (c *Client) Events(ctx context.Context, after int64, fn func(EventJSON) error) error {
	hdr := []string{"Accept", "text/event-stream"}
	if after >= 0 {
		hdr = append(hdr, "Last-Event-ID", strconv.FormatInt(after, 10))
	}
	res, err := c.send(ctx, "GET", "/rest/events", nil, hdr...)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) == 0 {
				continue
			}
			var ev EventJSON
			if err := json.Unmarshal(data, &ev); err != nil {
				return fmt.Errorf("event %s: %w", data, err)
			}
			data = data[:0]
			if err := fn(ev); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

func folderPath(id string) string { return "/rest/folders/" + url.PathEscape(id) }

// RemoveFolder is DELETE /rest/folders/{id}.
func (c *Client) RemoveFolder(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", folderPath(id), nil, nil)
}

// PauseFolder is POST /rest/folders/{id}/pause (or resume when !paused).
func (c *Client) PauseFolder(ctx context.Context, id string, paused bool) (sync.FolderStatus, error) {
	var fs sync.FolderStatus
	err := c.Do(ctx, "POST", folderPath(id)+"/"+pauseWord(paused), nil, &fs)
	return fs, err
}

func pauseWord(paused bool) string {
	if paused {
		return "pause"
	}
	return "resume"
}

// RevertFolder is POST /rest/folders/{id}/revert: the commits made.
func (c *Client) RevertFolder(ctx context.Context, id string) ([]gitstore.Change, error) {
	var out Changes
	err := c.Do(ctx, "POST", folderPath(id)+"/revert", nil, &out)
	return out.Changes, err
}

// Files is GET /rest/folders/{id}/files (zero rev: the head; "" dir: the
// root).
func (c *Client) Files(ctx context.Context, folder string, rev gitstore.Hash, dir string) ([]sync.FileEntry, error) {
	q := url.Values{"dir": {dir}}
	if !rev.IsZero() {
		q.Set("rev", rev.String())
	}
	var out []sync.FileEntry
	err := c.Do(ctx, "GET", folderPath(folder)+"/files?"+q.Encode(), nil, &out)
	return out, err
}

// OpenFile is GET /rest/folders/{id}/file: the file's bytes at rev (zero:
// the head); the caller closes them.
func (c *Client) OpenFile(ctx context.Context, folder string, rev gitstore.Hash, path string) (io.ReadCloser, error) {
	q := url.Values{"path": {path}}
	if !rev.IsZero() {
		q.Set("rev", rev.String())
	}
	res, err := c.send(ctx, "GET", folderPath(folder)+"/file?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// Peers is GET /rest/peers.
func (c *Client) Peers(ctx context.Context) ([]sync.PeerStatus, error) {
	var out []sync.PeerStatus
	err := c.Do(ctx, "GET", "/rest/peers", nil, &out)
	return out, err
}

// PausePeer is POST /rest/peers/{device}/pause (or resume when !paused).
func (c *Client) PausePeer(ctx context.Context, d crypto.DeviceID, paused bool) (sync.PeerStatus, error) {
	var ps sync.PeerStatus
	err := c.Do(ctx, "POST", "/rest/peers/"+d.String()+"/"+pauseWord(paused), nil, &ps)
	return ps, err
}

// Pending is GET /rest/pending.
func (c *Client) Pending(ctx context.Context) (sync.Pending, error) {
	var p sync.Pending
	err := c.Do(ctx, "GET", "/rest/pending", nil, &p)
	return p, err
}

// IgnoreDevice is DELETE /rest/pending/devices/{device}.
func (c *Client) IgnoreDevice(ctx context.Context, d crypto.DeviceID) error {
	return c.Do(ctx, "DELETE", "/rest/pending/devices/"+d.String(), nil, nil)
}

// IgnoreFolder is DELETE /rest/pending/folders/{id}?from=DEVICE.
func (c *Client) IgnoreFolder(ctx context.Context, id string, from crypto.DeviceID) error {
	return c.Do(ctx, "DELETE", "/rest/pending/folders/"+url.PathEscape(id)+"?from="+from.String(), nil, nil)
}

// Schedule is GET /rest/schedule.
func (c *Client) Schedule(ctx context.Context) (Schedule, error) {
	var s Schedule
	err := c.Do(ctx, "GET", "/rest/schedule", nil, &s)
	return s, err
}

// SetSchedule is PUT /rest/schedule, or PUT /rest/peers/{device}/schedule
// when peer is not zero; nil w: always (global) or follow the global
// window (peer).
func (c *Client) SetSchedule(ctx context.Context, peer crypto.DeviceID, w *sync.Window) (Schedule, error) {
	path := "/rest/schedule"
	if !peer.IsZero() {
		path = "/rest/peers/" + peer.String() + "/schedule"
	}
	var s Schedule
	err := c.Do(ctx, "PUT", path, WindowBody{Window: w}, &s)
	return s, err
}

// Limits is GET /rest/limits.
func (c *Client) Limits(ctx context.Context) (Limits, error) {
	var l Limits
	err := c.Do(ctx, "GET", "/rest/limits", nil, &l)
	return l, err
}

// SetLimits is PUT /rest/limits, or PUT /rest/peers/{device}/limits when
// peer is not zero.
func (c *Client) SetLimits(ctx context.Context, peer crypto.DeviceID, l sync.RateLimit) (Limits, error) {
	path := "/rest/limits"
	if !peer.IsZero() {
		path = "/rest/peers/" + peer.String() + "/limits"
	}
	var out Limits
	err := c.Do(ctx, "PUT", path, l, &out)
	return out, err
}

// SyncNow is POST /rest/sync-now (zero peer, "" folder: all).
func (c *Client) SyncNow(ctx context.Context, peer crypto.DeviceID, folder string) error {
	req := SyncNowRequest{Folder: folder}
	if !peer.IsZero() {
		req.Peer = peer.String()
	}
	return c.Do(ctx, "POST", "/rest/sync-now", req, nil)
}

// AcceptDevice is POST /rest/pending/devices/{device}/accept: the device
// becomes a peer sharing folders.
func (c *Client) AcceptDevice(ctx context.Context, d crypto.DeviceID, folders []string) (sync.PeerStatus, error) {
	var ps sync.PeerStatus
	err := c.Do(ctx, "POST", "/rest/pending/devices/"+d.String()+"/accept", AcceptDeviceRequest{Folders: nonNil(folders)}, &ps)
	return ps, err
}

// AcceptFolder is POST /rest/pending/folders/{id}/accept: share the
// offered folder from path ("": under the default parent); a non-zero from
// requires the offer to come from that device.
func (c *Client) AcceptFolder(ctx context.Context, id, path string, from crypto.DeviceID) (sync.FolderConfig, error) {
	req := AcceptFolderRequest{Path: path}
	if !from.IsZero() {
		req.From = from.String()
	}
	var f sync.FolderConfig
	err := c.Do(ctx, "POST", "/rest/pending/folders/"+url.PathEscape(id)+"/accept", req, &f)
	return f, err
}
