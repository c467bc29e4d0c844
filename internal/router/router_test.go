package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backend is a real HTTP server standing for one instance of a version.
type backend struct {
	version string
	srv     *httptest.Server
	addr    string
	status  atomic.Int32 // answer status of ordinary requests; 0 means 200
	sick    atomic.Bool  // health path answers 503
	hits    atomic.Int64 // ordinary requests served
	checks  atomic.Int64 // health checks served
	lastReq atomic.Pointer[http.Request]
	body    atomic.Pointer[string]
}

func newBackend(t testing.TB, version string) *backend {
	t.Helper()
	b := &backend{version: version}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			b.checks.Add(1)
			if b.sick.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		b.hits.Add(1)
		b.lastReq.Store(r)
		data, _ := io.ReadAll(r.Body)
		s := string(data)
		b.body.Store(&s)
		w.Header().Set("X-Version", version)
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		io.WriteString(w, version)
	}))
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// serve starts r on a real listener and returns its base URL.
func serve(t testing.TB, r *Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

func addrs(bs ...*backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.addr)
	}
	return out
}

func mustUpdate(t testing.TB, r *Router, cfg Config) {
	t.Helper()
	if err := r.Update(cfg); err != nil {
		t.Fatal(err)
	}
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// get sends a GET with optional headers and returns the status, the
// version header and the response.
func get(t testing.TB, c *http.Client, url string, header ...string) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Version"), resp
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxiesToTheWeightedVersions(t *testing.T) {
	t.Parallel()
	v1a, v1b, v2 := newBackend(t, "1.0.0"), newBackend(t, "1.0.0"), newBackend(t, "1.1.0")
	r := New(Options{App: "shop", Environment: "prod"})
	mustUpdate(t, r, Config{Pools: []Pool{
		{Version: "1.0.0", Weight: 80, Instances: addrs(v1a, v1b)},
		{Version: "1.1.0", Weight: 20, Instances: addrs(v2)},
	}})
	url := serve(t, r)
	c := newClient()
	got := map[string]int{}
	for range 1000 {
		code, v, _ := get(t, c, url+"/x")
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		got[v]++
	}
	if got["1.0.0"] != 800 || got["1.1.0"] != 200 {
		t.Fatalf("split %v, want 800/200 (smooth weighted round-robin is exact per period)", got)
	}
	if a, b := v1a.hits.Load(), v1b.hits.Load(); a != 400 || b != 400 {
		t.Fatalf("instances of 1.0.0 served %d and %d, want 400 each", a, b)
	}
}

func TestSplitAccuracyOver100000Requests(t *testing.T) {
	t.Parallel()
	// Selection only: the HTTP path is covered above and by bench/router.
	for _, weights := range [][]int{{95, 5}, {73, 27}, {50, 50}, {33, 33, 34}, {1, 99}} {
		r := New(Options{})
		cfg := Config{}
		for i, w := range weights {
			cfg.Pools = append(cfg.Pools, Pool{Version: fmt.Sprint("v", i), Weight: w, Instances: []string{fmt.Sprintf("127.0.0.1:%d", 9000+i)}})
		}
		mustUpdate(t, r, cfg)
		st := r.state.Load()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		count := map[string]int{}
		const n = 100_000
		for range n {
			keys := st.keysOf(req.Header)
			p, _ := st.choose(&keys, r.seq.Add(1)-1, 0)
			count[p.version]++
		}
		for i, w := range weights {
			share := 100 * float64(count[fmt.Sprint("v", i)]) / n
			if math.Abs(share-float64(w)) > 1 {
				t.Errorf("weights %v: v%d got %.2f%%, want %d%% ± 1", weights, i, share, w)
			}
		}
		r.Close()
	}
}

func TestWeightChangesUnderLoadLoseNoRequest(t *testing.T) {
	t.Parallel()
	v1 := []*backend{newBackend(t, "1.0.0"), newBackend(t, "1.0.0")}
	v2 := []*backend{newBackend(t, "2.0.0"), newBackend(t, "2.0.0")}
	r := New(Options{})
	cfg := func(w int) Config {
		return Config{
			Pools: []Pool{
				{Version: "1.0.0", Weight: 100 - w, Instances: addrs(v1...)},
				{Version: "2.0.0", Weight: w, Instances: addrs(v2...)},
			},
			HealthCheck: HealthCheck{Path: "/healthz", Interval: 50 * time.Millisecond},
		}
	}
	mustUpdate(t, r, cfg(50))
	eventually(t, "all instances healthy", func() bool {
		h := r.HealthyInstances()
		return h["1.0.0"] == 2 && h["2.0.0"] == 2
	})
	url := serve(t, r)

	// Run until 100 weight changes (10 ms apart) have happened under load;
	// the timeout only bounds a machine too busy to tick.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var updates atomic.Int64
	go func() {
		defer cancel()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := r.Update(cfg([]int{0, 5, 10, 25, 50, 100}[rng.IntN(6)])); err != nil {
				t.Error(err)
			}
			if updates.Add(1) == 100 {
				return
			}
		}
	}()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	c := newClient()
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				body := strings.NewReader("payload")
				resp, err := c.Post(url+"/work", "text/plain", body)
				if err != nil {
					failed.Add(1)
					t.Errorf("POST: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("POST: status %d", resp.StatusCode)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("ok=%d failed=%d updates=%d", ok.Load(), failed.Load(), updates.Load())
	if failed.Load() != 0 || ok.Load() < 100 || updates.Load() < 100 {
		t.Fatalf("ok=%d failed=%d updates=%d; want no failure, ≥100 requests, 100 updates", ok.Load(), failed.Load(), updates.Load())
	}
	var total uint64
	for _, s := range r.Metrics() {
		total += s.Requests
		if s.Errors != 0 {
			t.Errorf("version %s: %d errors", s.Version, s.Errors)
		}
	}
	if total != uint64(ok.Load()) {
		t.Errorf("metrics count %d requests, clients saw %d", total, ok.Load())
	}
}

func TestActiveHealthChecksAndFallback(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "1.0.0"), newBackend(t, "2.0.0")
	r := New(Options{App: "shop", Environment: "prod"})
	mustUpdate(t, r, Config{
		Pools: []Pool{
			{Version: "1.0.0", Weight: 50, Instances: addrs(v1)},
			{Version: "2.0.0", Weight: 50, Instances: addrs(v2)},
		},
		HealthCheck: HealthCheck{Path: "/healthz", Interval: 30 * time.Millisecond, Timeout: 30 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 3},
	})
	eventually(t, "both healthy", func() bool { h := r.HealthyInstances(); return h["1.0.0"] == 1 && h["2.0.0"] == 1 })
	url := serve(t, r)
	c := newClient()

	v2.sick.Store(true)
	eventually(t, "2.0.0 unhealthy", func() bool { return r.HealthyInstances()["2.0.0"] == 0 })
	hits := v2.hits.Load()
	for range 20 {
		code, v, _ := get(t, c, url+"/")
		if code != 200 || v != "1.0.0" {
			t.Fatalf("got %d from %q, want 200 from 1.0.0", code, v)
		}
	}
	if v2.hits.Load() != hits {
		t.Fatal("an unhealthy instance got traffic")
	}
	s, _ := r.Snapshot("2.0.0")
	if s.Fallbacks != 10 {
		t.Fatalf("2.0.0 fallbacks = %d, want 10 (half of 20)", s.Fallbacks)
	}

	v1.sick.Store(true)
	eventually(t, "1.0.0 unhealthy", func() bool { return r.HealthyInstances()["1.0.0"] == 0 })
	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), `no healthy instance for app "shop" in environment "prod" (1.0.0: 0/1 available, 2.0.0: 0/1 available)`) {
		t.Fatalf("got %d %q, want 503 naming the versions", resp.StatusCode, body)
	}

	v2.sick.Store(false)
	eventually(t, "2.0.0 healthy after two passes", func() bool { return r.HealthyInstances()["2.0.0"] == 1 })
	if code, v, _ := get(t, c, url+"/"); code != 200 || v != "2.0.0" {
		t.Fatalf("got %d from %q, want 200 from 2.0.0", code, v)
	}
}

func TestHealthCheckStopsWhenInstanceLeaves(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "1.0.0"), newBackend(t, "1.0.0")
	r := New(Options{})
	defer r.Close()
	hc := HealthCheck{Path: "/healthz", Interval: 5 * time.Millisecond, Timeout: 5 * time.Millisecond}
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: addrs(a, b)}}, HealthCheck: hc})
	eventually(t, "b checked", func() bool { return b.checks.Load() >= 3 })
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: addrs(a)}}, HealthCheck: hc})
	after := b.checks.Load()
	before := a.checks.Load()
	eventually(t, "a still checked", func() bool { return a.checks.Load() >= before+5 })
	// A check sent just before Update stopped the checker may still reach
	// the backend afterwards; a checker that kept running would have sent
	// about five more in the meantime.
	if n := b.checks.Load(); n > after+1 {
		t.Fatalf("removed instance got %d more health checks", n-after)
	}
	if got := len(r.Health()); got != 1 {
		t.Fatalf("Health() has %d instances, want 1", got)
	}
}

func TestNewInstanceGetsNoTrafficBeforeItsFirstCheck(t *testing.T) {
	t.Parallel()
	good := newBackend(t, "1.0.0")
	r := New(Options{})
	defer r.Close()
	mustUpdate(t, r, Config{
		Pools:       []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{good.addr, deadAddr(t)}}},
		HealthCheck: HealthCheck{Path: "/healthz", Interval: time.Hour, Timeout: time.Second},
	})
	eventually(t, "first check of the good instance", func() bool { return r.HealthyInstances()["1.0.0"] == 1 })
	for _, h := range r.Health() {
		if h.Addr != good.addr && (h.Available || !strings.Contains(h.LastError, "connect")) {
			t.Fatalf("dead instance: %+v, want unavailable with a connection error", h)
		}
	}
}

func TestPassiveEjectionWithBackoff(t *testing.T) {
	t.Parallel()
	bad, good := newBackend(t, "1.0.0"), newBackend(t, "1.0.0")
	bad.status.Store(500)
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	r := New(Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	mustUpdate(t, r, Config{
		Pools:    []Pool{{Version: "1.0.0", Weight: 100, Instances: addrs(bad, good)}},
		Ejection: Ejection{ConsecutiveFailures: 3, BaseDuration: 10 * time.Second, MaxDuration: time.Minute},
	})
	url := serve(t, r)
	c := newClient()
	send := func(n int) (fails int) {
		for range n {
			if code, _, _ := get(t, c, url+"/"); code >= 500 {
				fails++
			}
		}
		return fails
	}
	// Round-robin: the bad instance gets every other request until its third 500.
	if f := send(6); f != 3 {
		t.Fatalf("%d failures before ejection, want 3", f)
	}
	if f := send(20); f != 0 {
		t.Fatalf("%d failures while ejected, want 0", f)
	}
	h := r.Health()
	if h[0].Available || h[0].EjectedUntil.IsZero() {
		t.Fatalf("bad instance %+v, want ejected", h[0])
	}
	clock.Add(int64(10 * time.Second))
	if f := send(6); f != 3 {
		t.Fatalf("%d failures after the back-off, want 3 (readmitted, then ejected again)", f)
	}
	clock.Add(int64(10 * time.Second))
	if f := send(6); f != 0 {
		t.Fatalf("%d failures 10s into the second ejection, want 0 (back-off doubled to 20s)", f)
	}
	clock.Add(int64(10 * time.Second))
	bad.status.Store(0)
	send(10)
	if n := r.HealthyInstances()["1.0.0"]; n != 2 {
		t.Fatalf("%d instances available after recovery, want 2", n)
	}
	s, _ := r.Snapshot("1.0.0")
	if s.Errors != 6 {
		t.Fatalf("errors = %d, want 6", s.Errors)
	}
}

func TestRetriesConnectionFailureOnAnotherInstance(t *testing.T) {
	t.Parallel()
	good := newBackend(t, "1.0.0")
	dead := deadAddr(t)
	r := New(Options{})
	mustUpdate(t, r, Config{
		Pools:    []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{dead, good.addr}}},
		Ejection: Ejection{ConsecutiveFailures: 1000},
	})
	url := serve(t, r)
	c := newClient()
	for i := range 10 {
		code, _, _ := get(t, c, url+"/")
		if code != 200 {
			t.Fatalf("GET %d: status %d, want 200 after a retry", i, code)
		}
		resp, err := c.Post(url+"/", "text/plain", strings.NewReader(fmt.Sprint("body-", i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || *good.body.Load() != fmt.Sprint("body-", i) {
			t.Fatalf("POST %d: status %d body %q, want 200 with the body intact", i, resp.StatusCode, *good.body.Load())
		}
	}
	s, _ := r.Snapshot("1.0.0")
	if s.Retries == 0 || s.ConnFailures != s.Retries || s.Errors != 0 || s.Requests != 20 {
		t.Fatalf("snapshot %+v, want a retry per connection failure, 0 errors, 20 requests", s)
	}
}

func TestConnectionFailureWithoutAlternativeIs502(t *testing.T) {
	t.Parallel()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{deadAddr(t)}}}})
	url := serve(t, r)
	code, _, _ := get(t, newClient(), url+"/")
	if code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", code)
	}
	s, _ := r.Snapshot("1.0.0")
	if s.Errors != 1 || s.ConnFailures != 1 {
		t.Fatalf("snapshot %+v, want 1 error and 1 connection failure", s)
	}
}

func TestNoVersionsIs503(t *testing.T) {
	t.Parallel()
	r := New(Options{App: "shop", Environment: "dev"})
	url := serve(t, r)
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), `app "shop" in environment "dev" has no version configured`) {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestStickyCookie(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "1.0.0"), newBackend(t, "2.0.0")
	r := New(Options{})
	pools := func(w1, w2 int) []Pool {
		return []Pool{{Version: "1.0.0", Weight: w1, Instances: addrs(v1)}, {Version: "2.0.0", Weight: w2, Instances: addrs(v2)}}
	}
	mustUpdate(t, r, Config{Pools: pools(50, 50), Sticky: Sticky{Mode: StickyCookie}})
	url := serve(t, r)
	c := newClient()

	_, first, resp := get(t, c, url+"/")
	want := "airlock_version=" + first + "; Path=/; HttpOnly; SameSite=Lax"
	if got := resp.Header.Get("Set-Cookie"); got != want {
		t.Fatalf("Set-Cookie %q, want %q", got, want)
	}
	for range 20 {
		_, v, resp := get(t, c, url+"/", "Cookie", "theme=dark; airlock_version="+first)
		if v != first || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("sticky request went to %q (Set-Cookie %q), want %q and no new cookie", v, resp.Header.Get("Set-Cookie"), first)
		}
	}
	// Weight 0 (rollback): the cookie no longer holds.
	other := map[string]string{"1.0.0": "2.0.0", "2.0.0": "1.0.0"}[first]
	if first == "1.0.0" {
		mustUpdate(t, r, Config{Pools: pools(0, 100), Sticky: Sticky{Mode: StickyCookie}})
	} else {
		mustUpdate(t, r, Config{Pools: pools(100, 0), Sticky: Sticky{Mode: StickyCookie}})
	}
	_, v, resp := get(t, c, url+"/", "Cookie", "airlock_version="+first)
	if v != other || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "airlock_version="+other+";") {
		t.Fatalf("after rollback went to %q with Set-Cookie %q, want %q and a new cookie", v, resp.Header.Get("Set-Cookie"), other)
	}
}

func TestStickyHeaderHashesUsersByWeight(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "1.0.0"), newBackend(t, "2.0.0")
	r := New(Options{})
	mustUpdate(t, r, Config{
		Pools: []Pool{
			{Version: "1.0.0", Weight: 75, Instances: addrs(v1)},
			{Version: "2.0.0", Weight: 25, Instances: addrs(v2)},
		},
		Sticky: Sticky{Mode: StickyHeader, Name: "X-User"},
	})
	url := serve(t, r)
	c := newClient()
	for _, user := range []string{"alice", "bob", "carol"} {
		_, first, _ := get(t, c, url+"/", "X-User", user)
		for range 10 {
			if _, v, _ := get(t, c, url+"/", "X-User", user); v != first {
				t.Fatalf("user %s moved from %s to %s", user, first, v)
			}
		}
	}
	st := r.state.Load()
	n2 := 0
	const users = 10_000
	for i := range users {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("X-User", fmt.Sprint("user-", i))
		keys := st.keysOf(req.Header)
		if p, _ := st.choose(&keys, 0, 0); p.version == "2.0.0" {
			n2++
		}
	}
	if share := 100 * float64(n2) / users; math.Abs(share-25) > 2 {
		t.Fatalf("%.1f%% of users hash to 2.0.0, want 25%% ± 2", share)
	}
}

func TestOverrideHeader(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "1.0.0"), newBackend(t, "1.4.1")
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{
		{Version: "1.0.0", Weight: 100, Instances: addrs(v1)},
		{Version: "1.4.1", Weight: 0, Instances: addrs(v2)},
	}})
	url := serve(t, r)
	c := newClient()
	if _, v, _ := get(t, c, url+"/", "X-Airlock-Version", "1.4.1"); v != "1.4.1" {
		t.Fatalf("override went to %q, want 1.4.1", v)
	}
	if _, v, _ := get(t, c, url+"/", "X-Airlock-Version", "9.9.9"); v != "1.0.0" {
		t.Fatalf("unknown override went to %q, want the weighted 1.0.0", v)
	}
	if _, v, _ := get(t, c, url+"/"); v != "1.0.0" {
		t.Fatalf("plain request went to %q, want 1.0.0", v)
	}
	mustUpdate(t, r, Config{OverrideHeader: "-", Pools: r.Config().Pools})
	if _, v, _ := get(t, c, url+"/", "X-Airlock-Version", "1.4.1"); v != "1.0.0" {
		t.Fatalf("disabled override went to %q, want 1.0.0", v)
	}
}

func TestForwardsRequestAndResponse(t *testing.T) {
	t.Parallel()
	var seen atomic.Pointer[http.Request]
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Clone(context.Background()))
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "secret")
		w.Header().Set("Set-Cookie", "app=1")
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(http.StatusCreated)
		w.(http.Flusher).Flush()
		io.WriteString(w, "streamed")
		w.Header().Set("X-Sum", "42")
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{
		Pools:  []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}},
		Sticky: Sticky{Mode: StickyCookie, Name: "v"},
	})
	url := serve(t, r)
	req, _ := http.NewRequest(http.MethodPut, url+"/a/b?q=1", bytes.NewReader([]byte("data")))
	req.Header.Set("Connection", "X-Private")
	req.Header.Set("X-Private", "drop")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Host = "shop.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	in := seen.Load()
	switch {
	case resp.StatusCode != 201 || string(body) != "streamed":
		t.Fatalf("got %d %q", resp.StatusCode, body)
	case resp.Trailer.Get("X-Sum") != "42":
		t.Fatalf("trailer X-Sum %q, want 42", resp.Trailer.Get("X-Sum"))
	case resp.Header.Get("X-Hop") != "":
		t.Fatal("hop-by-hop response header named in Connection was forwarded")
	case len(resp.Header["Set-Cookie"]) != 2:
		t.Fatalf("Set-Cookie %q, want the app's and the router's", resp.Header["Set-Cookie"])
	case in.URL.RequestURI() != "/a/b?q=1" || in.Method != http.MethodPut || in.Host != "shop.example":
		t.Fatalf("backend saw %s %s host %s", in.Method, in.URL.RequestURI(), in.Host)
	case in.Header.Get("X-Private") != "":
		t.Fatal("hop-by-hop request header named in Connection was forwarded")
	case in.Header.Get("X-Forwarded-For") != "10.0.0.1, 127.0.0.1" || in.Header.Get("X-Forwarded-Proto") != "http":
		t.Fatalf("X-Forwarded-For %q Proto %q", in.Header.Get("X-Forwarded-For"), in.Header.Get("X-Forwarded-Proto"))
	}
}

func TestUpgradeIsProxied(t *testing.T) {
	t.Parallel()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	}))
	defer back.Close()
	r := New(Options{})
	mustUpdate(t, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{back.Listener.Addr().String()}}}})
	url := serve(t, r)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	buf := make([]byte, 4096)
	var got []byte
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	for !bytes.Contains(got, []byte("\r\n\r\n")) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading 101: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101")) {
		t.Fatalf("got %q, want 101", got)
	}
	fmt.Fprint(conn, "hello\n")
	n, _ := conn.Read(buf)
	if string(buf[:n]) != "echo:hello\n" {
		t.Fatalf("got %q after upgrade", buf[:n])
	}
}

func TestMetricsSnapshotsAndCollector(t *testing.T) {
	t.Parallel()
	v1, v2 := newBackend(t, "1.0.0"), newBackend(t, "2.0.0")
	v2.status.Store(503)
	r := New(Options{App: "shop", Environment: "prod"})
	mustUpdate(t, r, Config{
		Pools: []Pool{
			{Version: "1.0.0", Weight: 50, Instances: addrs(v1)},
			{Version: "2.0.0", Weight: 50, Instances: addrs(v2)},
		},
		Ejection: Ejection{Disabled: true},
	})
	url := serve(t, r)
	c := newClient()
	before, _ := r.Snapshot("2.0.0")
	for range 40 {
		get(t, c, url+"/")
	}
	after, ok := r.Snapshot("2.0.0")
	if !ok {
		t.Fatal("no snapshot for 2.0.0")
	}
	d := after.Sub(before)
	if d.Requests != 20 || d.Errors != 20 || d.ErrorRate() != 1 || d.Latency.Count != 20 {
		t.Fatalf("2.0.0 delta %+v, want 20 requests, all errors", d)
	}
	if q := d.Latency.Quantile(0.99); q <= 0 || q > time.Second {
		t.Fatalf("p99 %v out of range", q)
	}
	if _, ok := r.Snapshot("3.0.0"); ok {
		t.Fatal("snapshot of an unknown version")
	}
	if ms := r.Metrics(); len(ms) != 2 || ms[0].Version != "1.0.0" || ms[0].Errors != 0 || ms[0].Requests != 20 {
		t.Fatalf("Metrics() = %+v", ms)
	}

	other := New(Options{App: "shop", Environment: "staging"})
	defer other.Close()
	mustUpdate(t, other, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: addrs(v1)}}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collector(), other.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			key := f.GetName() + "{" + labels["environment"] + "," + labels["version"] + "}"
			found[key] = true
			if f.GetName() == "airlock_router_errors_total" && labels["environment"] == "prod" && labels["version"] == "2.0.0" && m.GetCounter().GetValue() != 20 {
				t.Errorf("errors_total{prod,2.0.0} = %v, want 20", m.GetCounter().GetValue())
			}
			if f.GetName() == "airlock_router_request_duration_seconds" && labels["version"] == "2.0.0" && m.GetHistogram().GetSampleCount() != 20 {
				t.Errorf("duration count %d, want 20", m.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, k := range []string{
		"airlock_router_requests_total{prod,1.0.0}", "airlock_router_errors_total{prod,2.0.0}",
		"airlock_router_request_duration_seconds{prod,2.0.0}", "airlock_router_weight_percent{staging,1.0.0}",
		"airlock_router_healthy_instances{prod,2.0.0}", "airlock_router_fallbacks_total{prod,1.0.0}",
	} {
		if !found[k] {
			t.Errorf("missing series %s", k)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	var m versionMetrics
	for i := range 100 {
		m.observe(time.Duration(i+1)*10*time.Microsecond, false) // 10µs..1ms uniform
	}
	h := m.snapshot("v").Latency
	for _, tt := range []struct {
		q      float64
		lo, hi time.Duration
	}{
		{0.5, 250 * time.Microsecond, 600 * time.Microsecond},
		{0.99, 500 * time.Microsecond, time.Millisecond},
	} {
		if got := h.Quantile(tt.q); got < tt.lo || got > tt.hi {
			t.Errorf("Quantile(%v) = %v, want within [%v, %v]", tt.q, got, tt.lo, tt.hi)
		}
	}
	if h.Mean() != 505*time.Microsecond {
		t.Errorf("Mean() = %v, want 505µs", h.Mean())
	}
}

func TestInstanceChurnUnderLoadLosesNoRequest(t *testing.T) {
	t.Parallel()
	a, b, c := newBackend(t, "1.0.0"), newBackend(t, "1.0.0"), newBackend(t, "1.0.0")
	r := New(Options{})
	cfg := func(insts ...*backend) Config {
		return Config{
			Pools:       []Pool{{Version: "1.0.0", Weight: 100, Instances: addrs(insts...)}},
			HealthCheck: HealthCheck{Path: "/healthz", Interval: 20 * time.Millisecond},
		}
	}
	mustUpdate(t, r, cfg(a, b))
	eventually(t, "a and b healthy", func() bool { return r.HealthyInstances()["1.0.0"] == 2 })
	url := serve(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var updates atomic.Int64
	// Like a rolling update: every 10 ms add the missing instance, or
	// remove the oldest once another one that stays is available (a new
	// instance gets traffic only after its first check passes).
	go func() {
		defer cancel()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		all := []*backend{a, b, c}
		set := []*backend{a, b}
		for next := 2; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if len(set) == 2 {
				set = append(set, all[next%3])
				next++
			} else {
				stays := map[string]bool{set[1].addr: true, set[2].addr: true}
				ready := false
				for _, h := range r.Health() {
					ready = ready || (stays[h.Addr] && h.Available)
				}
				if !ready {
					continue
				}
				set = set[1:]
			}
			if err := r.Update(cfg(set...)); err != nil {
				t.Error(err)
			}
			if updates.Add(1) == 60 {
				return
			}
		}
	}()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	cl := newClient()
	for w := range 6 {
		wg.Go(func() {
			for ctx.Err() == nil {
				var resp *http.Response
				var err error
				if w%2 == 0 {
					resp, err = cl.Get(url + "/")
				} else {
					resp, err = cl.Post(url+"/", "text/plain", strings.NewReader("x"))
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					if failed.Add(1) <= 3 {
						t.Logf("status %d", resp.StatusCode)
					}
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("ok=%d failed=%d updates=%d", ok.Load(), failed.Load(), updates.Load())
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Fatalf("ok=%d failed=%d; want no failure and ≥100 requests", ok.Load(), failed.Load())
	}
}
