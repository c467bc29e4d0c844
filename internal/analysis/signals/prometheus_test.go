package signals

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/signals/signalstest"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newFake(t *testing.T) *signalstest.Prometheus {
	t.Helper()
	p := signalstest.NewPrometheus()
	t.Cleanup(p.Close)
	return p
}

func newClient(t *testing.T, cfg PrometheusConfig, opts ...ClientOption) *Client {
	t.Helper()
	c, err := NewClient(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func env(m map[string]string) ClientOption {
	return WithLookupEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func TestClientInstantQuery(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	p.Answer("up", signalstest.Answer{Body: signalstest.Vector(1795773600, "1", "0.5")})
	c := newClient(t, PrometheusConfig{URL: p.URL + "/", Timeout: 3 * time.Second})
	res, err := c.Query(context.Background(), "up", t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != ResultVector || len(res.Series) != 2 || res.Series[1].Samples[0].Value != 0.5 || res.Series[1].Labels["series"] != "1" {
		t.Fatalf("result %+v", res)
	}
	reqs := p.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/api/v1/query" || r.Method != http.MethodPost || r.Form["time"] != "1795773600.000" || r.Form["timeout"] != "3s" || r.Authorization != "" {
		t.Fatalf("request %+v", r)
	}
}

func TestClientRangeQuery(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	p.Answer("rate(x[1m])", signalstest.Answer{Body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"v":"2"},"values":[[1795773300,"1"],[1795773600,"NaN"]]}]}}`})
	c := newClient(t, PrometheusConfig{URL: p.URL})
	res, err := c.QueryRange(context.Background(), "rate(x[1m])", Range{Start: t0.Add(-5 * time.Minute), End: t0, Step: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != ResultMatrix || res.Samples() != 2 {
		t.Fatalf("result %+v", res)
	}
	if KindOf(res.Check()) != KindNaN {
		t.Fatalf("Check = %v, want a nan error", res.Check())
	}
	r := p.Requests()[0]
	if r.Path != "/api/v1/query_range" || r.Form["start"] != "1795773300.000" || r.Form["end"] != "1795773600.000" || r.Form["step"] != "15" {
		t.Fatalf("request %+v", r)
	}
	if _, err := c.QueryRange(context.Background(), "x", Range{Start: t0, End: t0.Add(-time.Second), Step: time.Second}); KindOf(err) != KindConfig {
		t.Fatalf("inverted range: %v", err)
	}
	if len(p.Requests()) != 1 {
		t.Fatal("an invalid range reached the server")
	}
}

func TestClientAuthFromEnvironment(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	p.Answer("up", signalstest.Answer{Body: signalstest.Vector(1795773600, "1")})
	vars := map[string]string{"PROM_TOKEN": "s3cret", "PROM_USER": "judge", "PROM_PASS": "pw"}

	bearer := newClient(t, PrometheusConfig{URL: p.URL, BearerTokenEnv: "PROM_TOKEN"}, env(vars))
	if _, err := bearer.Query(context.Background(), "up", t0); err != nil {
		t.Fatal(err)
	}
	basic := newClient(t, PrometheusConfig{URL: p.URL, BasicUserEnv: "PROM_USER", BasicPasswordEnv: "PROM_PASS"}, env(vars))
	if _, err := basic.Query(context.Background(), "up", t0); err != nil {
		t.Fatal(err)
	}
	reqs := p.Requests()
	if reqs[0].Authorization != "Bearer s3cret" || reqs[1].Authorization != "Basic anVkZ2U6cHc=" {
		t.Fatalf("authorization %q, %q", reqs[0].Authorization, reqs[1].Authorization)
	}

	unset := newClient(t, PrometheusConfig{URL: p.URL, BearerTokenEnv: "PROM_MISSING"}, env(vars))
	_, err := unset.Query(context.Background(), "up", t0)
	if KindOf(err) != KindConfig || !strings.Contains(err.Error(), "PROM_MISSING") {
		t.Fatalf("unset variable: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("error leaks a credential")
	}
	if len(p.Requests()) != 2 {
		t.Fatal("a request went out without its credentials")
	}
}

func TestPrometheusConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  PrometheusConfig
		want string // substring of the error, "" for valid
	}{
		{"ok", PrometheusConfig{URL: "http://prom:9090/prefix", BearerTokenEnv: "TOKEN"}, ""},
		{"no url", PrometheusConfig{}, "analysis.prometheus.url: required"},
		{"scheme", PrometheusConfig{URL: "ftp://prom"}, `analysis.prometheus.url: scheme "ftp"`},
		{"userinfo", PrometheusConfig{URL: "http://u:p@prom"}, "credentials in the URL are not allowed"},
		{"both auths", PrometheusConfig{URL: "http://prom", BearerTokenEnv: "A", BasicUserEnv: "B", BasicPasswordEnv: "C"}, "exclude each other"},
		{"half basic", PrometheusConfig{URL: "http://prom", BasicUserEnv: "B"}, "go together"},
		{"env name", PrometheusConfig{URL: "http://prom", BearerTokenEnv: "not a name"}, "analysis.prometheus.bearerTokenEnv"},
		{"timeout", PrometheusConfig{URL: "http://prom", Timeout: -1}, "analysis.prometheus.timeout: negative"},
	} {
		err := tc.cfg.Validate("analysis.prometheus")
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// TestClientBadAnswers checks that every way Prometheus can fail comes
// back as a counted *Error of the right kind, never as a result.
func TestClientBadAnswers(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	refused := refusedURL(t)
	for _, tc := range []struct {
		name   string
		answer signalstest.Answer
		url    string
		limit  int64
		kind   Kind
		status int
	}{
		{"error envelope 400", signalstest.Answer{Status: 400, Body: signalstest.ErrorBody("bad_data", "parse error")}, "", 0, KindAPI, 400},
		{"error envelope 422", signalstest.Answer{Status: 422, Body: signalstest.ErrorBody("execution", "many-to-many matching not allowed")}, "", 0, KindAPI, 422},
		{"error envelope 200", signalstest.Answer{Body: signalstest.ErrorBody("timeout", "query timed out")}, "", 0, KindAPI, 200},
		{"proxy 502", signalstest.Answer{Status: 502, Body: "<html>bad gateway</html>"}, "", 0, KindHTTP, 502},
		{"success body with 500", signalstest.Answer{Status: 500, Body: signalstest.Vector(1795773600, "1")}, "", 0, KindHTTP, 500},
		{"malformed", signalstest.Answer{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`}, "", 0, KindMalformed, 200},
		{"truncated", signalstest.Answer{Body: `{"status":"success","data":{"resultType":"vec`}, "", 0, KindMalformed, 200},
		{"too large", signalstest.Answer{Body: signalstest.Vector(1795773600, "1", "2", "3")}, "", 64, KindTooLarge, 200},
		{"slow", signalstest.Answer{Body: signalstest.Vector(1795773600, "1"), Delay: 5 * time.Second}, "", 0, KindTimeout, 0},
		{"refused", signalstest.Answer{}, refused, 0, KindRefused, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := "q_" + strings.ReplaceAll(tc.name, " ", "_")
			p.Answer(q, tc.answer)
			u := p.URL
			if tc.url != "" {
				u = tc.url
			}
			c := newClient(t, PrometheusConfig{URL: u, Timeout: 200 * time.Millisecond, MaxResponseBytes: tc.limit})
			res, err := c.Query(context.Background(), q, t0)
			if res != nil {
				t.Fatalf("got a result with %v", err)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if se.Kind != tc.kind || se.Status != tc.status {
				t.Fatalf("kind %s status %d (%v), want %s %d", se.Kind, se.Status, err, tc.kind, tc.status)
			}
		})
	}
}

func TestClientAPIErrorType(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	c := newClient(t, PrometheusConfig{URL: p.URL})
	_, err := c.Query(context.Background(), "never answered", t0)
	var se *Error
	var ae *APIError
	if !errors.As(err, &se) || se.APIType != "bad_data" || !errors.As(err, &ae) || !strings.Contains(ae.Message, "no answer for query") {
		t.Fatalf("error %v", err)
	}
}

func TestClientCallerCancel(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	started := make(chan struct{}, 1)
	p.Answer("slow", signalstest.Answer{Body: signalstest.Vector(1795773600, "1"), Delay: 5 * time.Second, Started: started})
	c := newClient(t, PrometheusConfig{URL: p.URL, Timeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := c.Query(ctx, "slow", t0)
	if KindOf(err) != KindCanceled {
		t.Fatalf("error %v, want canceled", err)
	}
	tr := NewTracker(1)
	if h := tr.Record(err); h != Healthy || tr.State().Errors != 0 {
		t.Fatalf("a canceled query was counted: %s %+v", h, tr.State())
	}
}

// refusedURL returns the URL of a port nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
