package signals

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// candidate is a fake candidate: /ok answers 200 "status: ready v2",
// /fail 503, /moved a redirect, /slow waits for the client to leave, and
// /echo/ echoes its path.
func candidate(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("status: ready v2")) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/echo/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Method + " " + r.URL.EscapedPath() + "?" + r.URL.RawQuery))
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestProbe(t *testing.T) {
	t.Parallel()
	s := candidate(t)
	refused := refusedURL(t)
	for _, tc := range []struct {
		name   string
		cfg    ProbeConfig
		ok     bool
		kind   Kind
		status int
		reason string
	}{
		{"ok", ProbeConfig{URL: s.URL + "/ok"}, true, "", 200, ""},
		{"ok with body checks", ProbeConfig{URL: s.URL + "/ok", BodyContains: "ready", BodyRegex: `v\d+$`}, true, "", 200, ""},
		{"status mismatch", ProbeConfig{URL: s.URL + "/fail"}, false, KindStatus, 503, "status 503, want 200-299"},
		{"status in list", ProbeConfig{URL: s.URL + "/fail", ExpectStatus: []string{"200", "500-503"}}, true, "", 503, ""},
		{"redirect is judged, not followed", ProbeConfig{URL: s.URL + "/moved"}, false, KindStatus, 302, "status 302"},
		{"redirect expected", ProbeConfig{URL: s.URL + "/moved", ExpectStatus: []string{"302"}}, true, "", 302, ""},
		{"body mismatch", ProbeConfig{URL: s.URL + "/ok", BodyContains: "healthy"}, false, KindBody, 200, `does not contain "healthy"`},
		{"regex mismatch", ProbeConfig{URL: s.URL + "/ok", BodyRegex: `^ok$`}, false, KindBody, 200, "does not match /^ok$/"},
		{"body beyond the read limit", ProbeConfig{URL: s.URL + "/ok", BodyContains: "v2", MaxBodyBytes: 8}, false, KindBody, 200, "8 bytes read"},
		{"method and templated url", ProbeConfig{Method: "HEAD", URL: s.URL + "/echo/{{app}}?v={{version}}"}, true, "", 200, ""},
		{"does not resolve", ProbeConfig{URL: "http://does-not-resolve.invalid/", Timeout: 5 * time.Second}, false, KindDNS, 0, "does-not-resolve.invalid"},
		{"refused", ProbeConfig{URL: refused + "/health"}, false, KindRefused, 0, "connection refused"},
		{"timeout", ProbeConfig{URL: s.URL + "/slow", Timeout: 100 * time.Millisecond}, false, KindTimeout, 0, "no answer within 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Name = tc.name
			p, err := NewProbe(tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := p.Run(context.Background(), Labels{App: "shop", Version: "v2&x=1"}, nil)
			if res.OK != tc.ok || res.Kind != tc.kind || res.Status != tc.status || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("result %+v, want ok=%v kind=%q status=%d reason containing %q", res, tc.ok, tc.kind, tc.status, tc.reason)
			}
			if res.OK != (res.Err == nil) {
				t.Fatalf("OK %v with error %v", res.OK, res.Err)
			}
			if !res.OK && KindOf(res.Err) != tc.kind {
				t.Fatalf("Err kind %q, want %q", KindOf(res.Err), tc.kind)
			}
		})
	}
}

func TestProbeURLTemplateEscapes(t *testing.T) {
	t.Parallel()
	s := candidate(t)
	p, err := NewProbe(ProbeConfig{Name: "echo", URL: s.URL + "/echo/{{app}}?v={{version}}", BodyContains: "GET /echo/shop%2F..?v=v2%26x%3D1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := p.Run(context.Background(), Labels{App: "shop/..", Version: "v2&x=1"}, nil); !res.OK {
		t.Fatalf("result %+v", res)
	}
}

func TestProbeConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  ProbeConfig
		want string
	}{
		{ProbeConfig{Name: "p", URL: "https://{{app}}.example/health?v={{version}}", ExpectStatus: []string{"200-299", "404"}, BodyRegex: "ok"}, ""},
		{ProbeConfig{URL: "http://x/"}, "analysis.probes[0].name: required"},
		{ProbeConfig{Name: "p", URL: "http://x/{{tag}}"}, "analysis.probes[0].url: unknown placeholder {{tag}}"},
		{ProbeConfig{Name: "p", URL: "http://x/{{app"}, `analysis.probes[0].url: unclosed "{{"`},
		{ProbeConfig{Name: "p", URL: "ftp://x/"}, `analysis.probes[0].url: scheme "ftp"`},
		{ProbeConfig{Name: "p", URL: "/health"}, `analysis.probes[0].url: scheme ""`},
		{ProbeConfig{Name: "p", URL: "http://user:pw@x/"}, `analysis.probes[0].url: credentials in the URL are not allowed`},
		{ProbeConfig{Name: "p", URL: "http://x/", Method: "GE T"}, "analysis.probes[0].method"},
		{ProbeConfig{Name: "p", URL: "http://x/", ExpectStatus: []string{"299-200"}}, "analysis.probes[0].expectStatus[0]"},
		{ProbeConfig{Name: "p", URL: "http://x/", ExpectStatus: []string{"2xx"}}, "analysis.probes[0].expectStatus[0]"},
		{ProbeConfig{Name: "p", URL: "http://x/", BodyRegex: "("}, "analysis.probes[0].bodyRegex"},
		{ProbeConfig{Name: "p", URL: "http://x/", Timeout: -1}, "analysis.probes[0].timeout: negative"},
	} {
		err := tc.cfg.Validate("analysis.probes[0]")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewProbe(ProbeConfig{Name: "p", URL: "http://x/{{nope}}"}, nil); KindOf(err) != KindConfig {
		t.Fatalf("NewProbe with a bad template: %v", err)
	}
}

// Headers are templated per run and sent; a header value with a line
// break or a bad name is refused when the probe is compiled.
func TestProbeHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("X-Airlock-Version") + "|" + r.Header.Get("X-App")
	}))
	t.Cleanup(s.Close)
	p, err := NewProbe(ProbeConfig{Name: "h", URL: s.URL + "/", Headers: map[string]string{"X-Airlock-Version": "{{version}}", "X-App": "app={{app}}"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := p.Run(context.Background(), Labels{App: "shop", Version: "1.2.0"}, nil); !res.OK {
		t.Fatalf("probe failed: %+v", res)
	}
	if h := <-got; h != "1.2.0|app=shop" {
		t.Fatalf("headers sent: %q", h)
	}
	for _, bad := range []map[string]string{{"X-A": "a\r\nX-Injected: 1"}, {"Bad Name": "v"}, {"X-T": "{{nope}}"}} {
		if err := (ProbeConfig{Name: "h", URL: s.URL, Headers: bad}).Validate("probe"); err == nil || !strings.Contains(err.Error(), "probe.headers") {
			t.Errorf("headers %q: err = %v, want one naming probe.headers", bad, err)
		}
	}
}
