package webview_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/internal/webview"
	"github.com/peersync/peersync/sync"
)

// The web view over an engine's folders: a user who may read "docs" logs
// in and downloads a file. A server serves it with http.ListenAndServeTLS
// and Options.Secure.
func Example() {
	home, _ := os.MkdirTemp("", "webview-example")
	defer os.RemoveAll(home)
	docs, _ := os.MkdirTemp("", "webview-docs")
	defer os.RemoveAll(docs)
	_ = os.WriteFile(filepath.Join(docs, "hello.txt"), []byte("hello, phone"), 0o644)

	id, _ := crypto.GenerateIdentity(nil)
	e, err := sync.New(sync.Config{Home: home, Identity: id})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.AddFolder(ctx, sync.FolderConfig{ID: "docs", Path: docs}); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = e.Scan(ctx, "docs") // the view shows what is committed

	users := webview.OpenUsers(filepath.Join(home, "webusers.json"))
	if _, err := users.Add("ann", "correct horse", []string{"docs"}); err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewTLSServer(webview.New(e, webview.Options{Users: users, Secure: true}))
	defer srv.Close()

	c := srv.Client()
	c.Jar, _ = cookiejar.New(nil)
	defer c.CloseIdleConnections()
	resp, _ := c.PostForm(srv.URL+"/login", url.Values{"user": {"ann"}, "password": {"correct horse"}})
	resp.Body.Close()
	fmt.Println("login:", resp.StatusCode)
	resp, _ = c.Get(srv.URL + "/f/docs/raw/hello.txt")
	var b [64]byte
	n, _ := resp.Body.Read(b[:])
	resp.Body.Close()
	fmt.Println(resp.Header.Get("Content-Disposition"), string(b[:n]))
	resp, _ = c.Get(srv.URL + "/f/other/tree/")
	resp.Body.Close()
	fmt.Println("not granted:", resp.StatusCode == http.StatusNotFound)
	// Output:
	// login: 200
	// attachment; filename=hello.txt hello, phone
	// not granted: true
}
