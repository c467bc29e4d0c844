package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawConn dials the router and returns the connection and a reader of its
// answers.
func rawConn(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func TestFastPathRewritesHeaders(t *testing.T) {
	t.Parallel()
	var seen atomic.Pointer[http.Request]
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Clone(context.Background()))
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Set-Cookie", "app=1")
		io.WriteString(w, "ok")
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{
		Pools:  []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}},
		Sticky: Sticky{Mode: StickyCookie, Name: "v"},
	})
	c, br := rawConn(t, serve(t, r))
	io.WriteString(c, "GET /a/b?q=1 HTTP/1.1\r\n"+
		"host: shop.example\r\n"+
		"connection: keep-alive, X-Private\r\n"+
		"X-Private: drop\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Authorization: Basic eA==\r\n"+
		"X-Forwarded-For: 10.0.0.1\r\n"+
		"x-forwarded-for: 10.0.0.2\r\n"+
		"TE: trailers, deflate\r\n"+
		"X-Keep: yes\r\n"+
		"\r\n")
	resp, body := readAnswer(t, br, http.MethodGet)
	in := seen.Load()
	switch {
	case resp.StatusCode != 200 || body != "ok":
		t.Fatalf("got %d %q", resp.StatusCode, body)
	case resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Connection") != "":
		t.Fatalf("hop-by-hop response headers forwarded: %v", resp.Header)
	case len(resp.Header["Set-Cookie"]) != 2 || resp.Header.Get("Date") == "":
		t.Fatalf("Set-Cookie %q, Date %q: want the app's and the router's cookie, and a date", resp.Header["Set-Cookie"], resp.Header.Get("Date"))
	case in.URL.RequestURI() != "/a/b?q=1" || in.Host != "shop.example":
		t.Fatalf("backend saw %s host %s", in.URL.RequestURI(), in.Host)
	case in.Header.Get("X-Private") != "" || in.Header.Get("Keep-Alive") != "" || in.Header.Get("Proxy-Authorization") != "":
		t.Fatalf("hop-by-hop request headers forwarded: %v", in.Header)
	case in.Header.Get("X-Forwarded-For") != "10.0.0.1, 10.0.0.2, 127.0.0.1" || in.Header.Get("X-Forwarded-Proto") != "http":
		t.Fatalf("X-Forwarded-For %q Proto %q", in.Header.Get("X-Forwarded-For"), in.Header.Get("X-Forwarded-Proto"))
	case in.Header.Get("Te") != "trailers" || in.Header.Get("X-Keep") != "yes":
		t.Fatalf("Te %q X-Keep %q", in.Header.Get("Te"), in.Header.Get("X-Keep"))
	case r.srv.handoffs.Load() != 0:
		t.Fatal("the request was handed to net/http; this test is about the fast loop")
	}
}

// TestOneConnectionMixesFastAndHandedOffRequests pipelines bodyless GETs
// (the fast loop) with a POST (handed to net/http) on one connection: the
// answers come back in order and the POST's body arrives.
func TestOneConnectionMixesFastAndHandedOffRequests(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "1.0.0")
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{b.addr}}}})
	c, br := rawConn(t, serve(t, r))
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"HEAD /2 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ndata"+
		"GET /4 HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodGet} {
		resp, body := readAnswer(t, br, m)
		want := "1.0.0"
		if m == http.MethodHead {
			want = ""
		}
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("answer %d (%s): %d %q", i+1, m, resp.StatusCode, body)
		}
	}
	if got := *b.body.Load(); got != "" {
		t.Fatalf("last request's body %q, want empty", got)
	}
	if b.hits.Load() != 4 {
		t.Fatalf("backend served %d requests, want 4", b.hits.Load())
	}
	if n := r.srv.handoffs.Load(); n != 1 {
		t.Fatalf("%d connections handed to net/http, want 1 (at the POST)", n)
	}
}

func TestRequestsTheFastLoopDoesNotTake(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "1.0.0")
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{b.addr}}}})
	url := serve(t, r)
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", 200},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"head over 8 KB", "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 9000) + "\r\n\r\n", 200},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"bad header name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
		{"control character", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400},
		{"folded line", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 200},
		{"request body", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", 200},
	} {
		c, br := rawConn(t, url)
		before := r.srv.handoffs.Load()
		io.WriteString(c, tc.req)
		resp, body := readAnswer(t, br, http.MethodGet)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d %q, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
		if r.srv.handoffs.Load() != before+1 {
			t.Errorf("%s: not handed to net/http", tc.name)
		}
	}
}

// TestResponseFramings checks answers whose end is the end of the
// connection (passed on chunked), informational answers before the final
// one, and a client asking to close.
func TestResponseFramings(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					switch req.URL.Path {
					case "/eof":
						io.WriteString(c, "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil ")
						time.Sleep(20 * time.Millisecond)
						io.WriteString(c, "the end")
						return
					case "/early":
						io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
					}
				}
			}()
		}
	}()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{ln.Addr().String()}}}})
	c, br := rawConn(t, serve(t, r))
	io.WriteString(c, "GET /eof HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readAnswer(t, br, http.MethodGet); resp.StatusCode != 200 || body != "until the end" || resp.Close {
		t.Fatalf("/eof: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	io.WriteString(c, "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, body := readAnswer(t, br, http.MethodGet)
	if resp.StatusCode != 200 || body != "final" || !resp.Close {
		t.Fatalf("/early: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after Connection: close (%v)", err)
	}
}

func TestShutdownLetsTheRequestInFlightFinish(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "done")
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln) }()
	idle, _ := rawConn(t, "http://"+ln.Addr().String())
	c, br := rawConn(t, "http://"+ln.Addr().String())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	resp, body := readAnswer(t, br, http.MethodGet)
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Fatalf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}
}

// FuzzParseRequest checks that a request head the fast loop takes becomes
// an upstream head that net/http parses to the same method, target and
// Host, without hop-by-hop fields.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: X-A, close\r\nX-A: 1\r\nTE: trailers\r\n\r\n"))
	f.Add([]byte("HEAD / HTTP/1.1\nhost: [::1]:80\nX-Forwarded-For: 1.2.3.4\n\n"))
	f.Add([]byte("OPTIONS /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nCookie: airlock_version=2\r\n\r\n"))
	r := New(Options{})
	defer r.Close()
	mustUpdate(f, r, Config{
		Pools:  []Pool{{Version: "1", Weight: 100, Instances: []string{"127.0.0.1:9"}}},
		Sticky: Sticky{Mode: StickyCookie},
	})
	f.Fuzz(func(t *testing.T, head []byte) {
		n := headEnd(head)
		if n == 0 {
			return
		}
		head = head[:n]
		c := &serverConn{r: r, ip: []byte("127.0.0.1")}
		if !c.parseRequest(head) {
			return
		}
		in, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(head))))
		if err != nil {
			t.Fatalf("fast loop took %q, which net/http refuses: %v", head, err)
		}
		out, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(c.out))))
		if err != nil {
			t.Fatalf("upstream head %q does not parse: %v", c.out, err)
		}
		if out.Method != in.Method || out.RequestURI != in.RequestURI || out.Host != in.Host {
			t.Fatalf("upstream %s %s host %q, client %s %s host %q", out.Method, out.RequestURI, out.Host, in.Method, in.RequestURI, in.Host)
		}
		for _, h := range hopHeaders {
			if _, ok := out.Header[h]; ok && !(h == "Te" && out.Header.Get("Te") == "trailers") {
				t.Fatalf("upstream head %q keeps hop-by-hop %s", c.out, h)
			}
		}
		for _, name := range in.Header["Connection"] {
			for _, tok := range strings.Split(name, ",") {
				if k := http.CanonicalHeaderKey(strings.TrimSpace(tok)); k != "" && out.Header[k] != nil && k != "Te" {
					t.Fatalf("upstream head %q keeps %s named in Connection", c.out, k)
				}
			}
		}
	})
}

// TestPipelinedRequestArrivingDuringAnExchange: a client that sends its
// next request while the router waits for the upstream's answer to the
// previous one gets both answers. The next request's bytes are then in the
// socket before the router writes the first answer and waits for more: it
// must read them, not wait for a readiness that has already passed.
func TestPipelinedRequestArrivingDuringAnExchange(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, r.URL.Path)
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}}})
	c, br := rawConn(t, serve(t, r))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 5 {
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(20 * time.Millisecond) // the router is waiting for /first's answer
		io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, want := range []string{"/first", "/second"} {
			resp, body := readAnswer(t, br, http.MethodGet)
			if resp.StatusCode != 200 || body != want {
				t.Fatalf("round %d: answer %d %q, want 200 %q", i, resp.StatusCode, body, want)
			}
		}
	}
	if r.srv.handoffs.Load() != 0 {
		t.Fatal("the requests were handed to net/http; this test is about the fast loop")
	}
}
