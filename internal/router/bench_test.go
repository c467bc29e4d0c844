package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchBackend answers a small fixed body, like a cheap API call.
func benchBackend(b *testing.B) *httptest.Server {
	b.Helper()
	body := []byte(`{"ok":true,"version":"1.0.0"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchGet(b *testing.B, url string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkDirect is the baseline: the client talks to the backend.
func BenchmarkDirect(b *testing.B) {
	benchGet(b, benchBackend(b).URL+"/")
}

// BenchmarkProxy sends the same requests through the router over real
// listeners; the difference to BenchmarkDirect is the router's cost.
func BenchmarkProxy(b *testing.B) {
	v1, v2 := benchBackend(b), benchBackend(b)
	r := New(Options{})
	mustUpdate(b, r, Config{Pools: []Pool{
		{Version: "1.0.0", Weight: 90, Instances: []string{v1.Listener.Addr().String()}},
		{Version: "1.1.0", Weight: 10, Instances: []string{v2.Listener.Addr().String()}},
	}})
	benchGet(b, serve(b, r)+"/")
}

// BenchmarkServeHTTP measures the handler alone (no client-side HTTP):
// allocations here are the router's own plus the transport's.
func BenchmarkServeHTTP(b *testing.B) {
	v1 := benchBackend(b)
	r := New(Options{})
	defer r.Close()
	mustUpdate(b, r, Config{Pools: []Pool{{Version: "1.0.0", Weight: 100, Instances: []string{v1.Listener.Addr().String()}}}})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Header = http.Header{} // the router edits the inbound header in place
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkChoose measures version and instance selection.
func BenchmarkChoose(b *testing.B) {
	r := New(Options{})
	defer r.Close()
	mustUpdate(b, r, Config{
		Pools: []Pool{
			{Version: "1.0.0", Weight: 73, Instances: []string{"127.0.0.1:9001", "127.0.0.1:9002"}},
			{Version: "1.1.0", Weight: 27, Instances: []string{"127.0.0.1:9003"}},
		},
		Sticky: Sticky{Mode: StickyCookie},
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "a=b; airlock_version=1.1.0")
	st := r.state.Load()
	b.ReportAllocs()
	for b.Loop() {
		keys := st.keysOf(req.Header)
		p, _ := st.choose(&keys, r.seq.Add(1), 0)
		if p.pick(0, nil) == nil {
			b.Fatal("no instance")
		}
	}
}
