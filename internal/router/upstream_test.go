package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStaleKeepAliveConnectionIsRetried runs a backend that closes every
// connection after one response without saying so: the router's pooled
// connection is dead when it is next used, and the request must still
// succeed on a fresh one.
func TestStaleKeepAliveConnectionIsRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{ln.Addr().String()}}}})
	url := serve(t, r)
	c := newClient()
	for i := range 5 {
		code, _, _ := get(t, c, url+"/")
		if code != 200 {
			t.Fatalf("request %d: status %d, want 200", i, code)
		}
		time.Sleep(10 * time.Millisecond) // let the backend's close arrive
	}
	if n := conns.Load(); n != 5 {
		t.Fatalf("backend saw %d connections, want 5 (one per request)", n)
	}
	if s, _ := r.Snapshot("1.0.0"); s.ConnFailures != 0 || s.Errors != 0 {
		t.Fatalf("snapshot %+v: a stale pooled connection is not an instance failure", s)
	}
}

func TestFastPathResponseShapes(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "10")
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			for i := range 3 {
				io.WriteString(w, strings.Repeat("ab", 10000*(i+1)))
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Sum", "7")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/ua":
			io.WriteString(w, r.Header.Get("User-Agent")+"|"+r.Host+"|"+r.URL.RequestURI())
		}
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}}})
	url := serve(t, r)
	c := newClient()
	do := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, url+path, nil)
		req.Header.Set("User-Agent", "")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	for range 2 { // the second round reuses pooled connections
		if resp, _ := do(http.MethodHead, "/head"); resp.StatusCode != 200 || resp.ContentLength != 10 {
			t.Fatalf("HEAD: %d length %d", resp.StatusCode, resp.ContentLength)
		}
		if resp, b := do(http.MethodGet, "/304"); resp.StatusCode != 304 || b != "" {
			t.Fatalf("304: %d %q", resp.StatusCode, b)
		}
		if resp, b := do(http.MethodGet, "/204"); resp.StatusCode != 204 || b != "" {
			t.Fatalf("204: %d %q", resp.StatusCode, b)
		}
		if resp, b := do(http.MethodGet, "/chunked"); resp.StatusCode != 200 || len(b) != 120000 || resp.Trailer.Get("X-Sum") != "7" {
			t.Fatalf("chunked: %d, %d bytes, trailer %q", resp.StatusCode, len(b), resp.Trailer.Get("X-Sum"))
		}
		if resp, b := do(http.MethodGet, "/close"); resp.StatusCode != 200 || b != "bye" {
			t.Fatalf("close: %d %q", resp.StatusCode, b)
		}
		if _, b := do(http.MethodGet, "/ua?x=1&y=%2F"); !strings.HasSuffix(b, "|/ua?x=1&y=%2F") || strings.HasPrefix(b, "Go-http-client") {
			t.Fatalf("backend saw %q: want no Go User-Agent and the raw request URI", b)
		}
	}
}

func TestClientGoneCancelsTheUpstreamRequest(t *testing.T) {
	t.Parallel()
	released := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the router closed the upstream connection
			close(released)
		case <-time.After(10 * time.Second):
		}
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}}})
	url := serve(t, r)
	c := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := c.Get(url + "/slow"); err == nil {
		t.Fatal("want a client timeout")
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled when the client went away")
	}
}

func TestHugeResponseHeadIsRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("x", 1000) + "\r\n"
		for range 2000 { // 2 MB of header
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{ln.Addr().String()}}}})
	url := serve(t, r)
	if code, _, _ := get(t, newClient(), url+"/"); code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 for a response head over 1 MB", code)
	}
}
