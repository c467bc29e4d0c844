package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

const grafanaToken = "glsa_test_token"

// fakeGrafana speaks the part of Grafana's HTTP API a grafana sink uses:
// POST /api/annotations with a service-account bearer token and a JSON
// body. It refuses a wrong token (401) and a body Grafana would not take
// (400), answers the next of fail (500) first, and keeps what it accepted.
type fakeGrafana struct {
	mu       sync.Mutex
	fail     int
	attempts int
	accepted []notify.Annotation
	srv      *httptest.Server
}

func newFakeGrafana(t *testing.T, fail int) *fakeGrafana {
	g := &fakeGrafana{fail: fail}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /grafana/api/annotations", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.attempts++
		if r.Header.Get("Authorization") != "Bearer "+grafanaToken {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"invalid API key"}`)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var a notify.Annotation
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil || a.Time <= 0 || a.Text == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":"bad annotation: %v"}`, err)
			return
		}
		if g.fail > 0 {
			g.fail--
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"Failed to save annotation"}`)
			return
		}
		g.accepted = append(g.accepted, a)
		fmt.Fprintf(w, `{"message":"Annotation added","id":%d}`, len(g.accepted))
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGrafana) state() (int, []notify.Annotation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts, append([]notify.Annotation(nil), g.accepted...)
}

func grafanaSetup(t *testing.T, sink string, token string) (store.Store, *clock, *notify.Deliverer) {
	t.Helper()
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	scheme := server.NewScheme()
	objs, err := scheme.Decode("sink.yaml", []byte(sink))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.New(st, scheme).Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	d := &notify.Deliverer{Store: st, Now: c.Now, Getenv: func(k string) string {
		if k == "AIRLOCK_GRAFANA_TOKEN" {
			return token
		}
		return ""
	}}
	return st, c, d
}

func enqueueEvent(t *testing.T, st store.Store, ev notify.Event) int {
	t.Helper()
	var n int
	err := st.Write(context.Background(), store.Actor{Name: "test"}, func(tx store.Tx) error {
		var err error
		n, err = notify.Enqueue(context.Background(), tx, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGrafanaSinkPostsAnnotationsAndRetries(t *testing.T) {
	g := newFakeGrafana(t, 1)
	sink := fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: grafana}\nspec: {type: grafana, url: %q, tokenEnv: AIRLOCK_GRAFANA_TOKEN}\n", g.srv.URL+"/grafana/")
	st, c, d := grafanaSetup(t, sink, grafanaToken)
	queuedAt := c.Now()
	ev := notify.Event{Type: notify.RolloutStep, Subject: "shop 1.4.0 in prod: 25% of traffic", Message: "step 2 of 4",
		Data: map[string]string{"app": "shop", "environment": "prod", "version": "1.4.0", "step": "1", "weight": "25", "phase": "Progressing"}}
	if n := enqueueEvent(t, st, ev); n != 1 {
		t.Fatalf("a grafana sink without events queued %d markers, want 1", n)
	}
	// An alert event is not a marker: a grafana sink without a list does
	// not annotate it.
	if n := enqueueEvent(t, st, notify.Event{Type: notify.AccessRequested, Subject: "access"}); n != 0 {
		t.Fatalf("a grafana sink without events queued %d access.requested, want 0", n)
	}

	ctx := context.Background()
	if delivered, failed, err := d.RunOnce(ctx); err != nil || delivered != 0 || failed != 1 {
		t.Fatalf("first attempt (Grafana answers 500): delivered %d failed %d err %v", delivered, failed, err)
	}
	s := only(t, st)
	if s.State != notify.StatePending || s.Log[0].Status != http.StatusInternalServerError {
		t.Fatalf("after a 500 the annotation waits for a retry: %+v", s)
	}
	c.Add(notify.Backoff(1))
	if delivered, failed, err := d.RunOnce(ctx); err != nil || delivered != 1 || failed != 0 {
		t.Fatalf("retry: delivered %d failed %d err %v", delivered, failed, err)
	}
	if s := only(t, st); s.State != notify.StateDelivered || s.Attempts != 2 {
		t.Fatalf("after the retry: %+v", s)
	}
	attempts, got := g.state()
	if attempts != 2 || len(got) != 1 {
		t.Fatalf("grafana saw %d attempts and kept %d annotations, want 2 and 1", attempts, len(got))
	}
	a := got[0]
	if a.Time != queuedAt.UnixMilli() {
		t.Errorf("annotation time %d, want the time the event was queued %d (not the retry's)", a.Time, queuedAt.UnixMilli())
	}
	if want := []string{"airlock", "rollout.step", "shop", "prod", "1.4.0"}; !slices.Equal(a.Tags, want) {
		t.Errorf("tags %q, want %q", a.Tags, want)
	}
	if a.Text != "shop 1.4.0 in prod: 25% of traffic\nstep 2 of 4" {
		t.Errorf("text %q", a.Text)
	}
}

func TestGrafanaSinkWithoutItsTokenFails(t *testing.T) {
	g := newFakeGrafana(t, 0)
	sink := fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: grafana}\nspec: {type: grafana, url: %q, tokenEnv: AIRLOCK_GRAFANA_TOKEN}\n", g.srv.URL+"/grafana")
	for _, tc := range []struct{ name, token, want string }{
		{"unset", "", "AIRLOCK_GRAFANA_TOKEN"},
		{"wrong", "glsa_wrong", "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, d := grafanaSetup(t, sink, tc.token)
			enqueueEvent(t, st, notify.Event{Type: notify.RolloutStarted, Subject: "shop 1.4.0 in prod: rollout started", Data: map[string]string{"app": "shop"}})
			if _, failed, err := d.RunOnce(context.Background()); err != nil || failed != 1 {
				t.Fatalf("failed %d err %v, want one failed attempt", failed, err)
			}
			if s := only(t, st); s.State != notify.StatePending || !bytes.Contains([]byte(s.LastError), []byte(tc.want)) {
				t.Fatalf("status %+v, want a pending retry whose error names %q", s, tc.want)
			}
		})
	}
	if _, got := g.state(); len(got) != 0 {
		t.Fatalf("grafana kept %d annotations without the right token", len(got))
	}
}

func TestMarkersGoOnlyWhereAsked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		sink  notify.SinkSpec
		event string
		want  bool
	}{
		{"webhook without a list: alerts", notify.SinkSpec{Type: notify.Webhook}, notify.PromotionBlocked, true},
		{"webhook without a list: rollback", notify.SinkSpec{Type: notify.Webhook}, notify.Rollback, true},
		{"webhook without a list: no markers", notify.SinkSpec{Type: notify.Webhook}, notify.RolloutStep, false},
		{"webhook naming a marker", notify.SinkSpec{Type: notify.Webhook, Events: []string{notify.RolloutStep}}, notify.RolloutStep, true},
		{"grafana without a list: markers", notify.SinkSpec{Type: notify.Grafana}, notify.PromotionSucceeded, true},
		{"grafana without a list: rollback", notify.SinkSpec{Type: notify.Grafana}, notify.Rollback, true},
		{"grafana without a list: no alerts", notify.SinkSpec{Type: notify.Grafana}, notify.ApprovalRequested, false},
		{"grafana naming an alert", notify.SinkSpec{Type: notify.Grafana, Events: []string{notify.ApprovalRequested}}, notify.ApprovalRequested, true},
	}
	for _, tc := range tests {
		if got := tc.sink.Matches(tc.event); got != tc.want {
			t.Errorf("%s: Matches(%s) = %v, want %v", tc.name, tc.event, got, tc.want)
		}
	}
}

func TestValidateGrafanaSink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sink notify.SinkSpec
		path string // "" when valid
	}{
		{"base URL and token", notify.SinkSpec{Type: notify.Grafana, URL: "https://grafana.example.com", TokenEnv: "AIRLOCK_GRAFANA_TOKEN"}, ""},
		{"URL from the environment", notify.SinkSpec{Type: notify.Grafana, URLEnv: "GRAFANA_URL", TokenEnv: "T"}, ""},
		{"no URL", notify.SinkSpec{Type: notify.Grafana, TokenEnv: "T"}, "spec.url"},
		{"bad token variable", notify.SinkSpec{Type: notify.Grafana, URL: "https://g.example.com", TokenEnv: "not a name"}, "spec.tokenEnv"},
		{"signing key on grafana", notify.SinkSpec{Type: notify.Grafana, URL: "https://g.example.com", SecretEnv: "K"}, "spec.secretEnv"},
		{"token on a webhook", notify.SinkSpec{Type: notify.Webhook, URL: "https://h.example.com", TokenEnv: "T"}, "spec.tokenEnv"},
		{"marker events are known", notify.SinkSpec{Type: notify.Webhook, URL: "https://h.example.com", Events: []string{notify.RolloutFinished, notify.VerdictRecorded}}, ""},
	}
	for _, tc := range tests {
		err := notify.ValidateSink(tc.sink)
		switch {
		case tc.path == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.path != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.path))):
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.path)
		}
	}
}
