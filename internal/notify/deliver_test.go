package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
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

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// receiver is a real HTTP server that answers with the next status of
// codes (the last one repeats) and keeps every request.
type receiver struct {
	mu    sync.Mutex
	codes []int
	got   []request
	srv   *httptest.Server
}

type request struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	r := &receiver{codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, request{req.Header.Clone(), b})
		code := r.codes[0]
		if len(r.codes) > 1 {
			r.codes = r.codes[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

const secret = "s3cret-key"

func setup(t *testing.T, sinkType, url, secretEnv string) (store.Store, *clock, *notify.Deliverer) {
	t.Helper()
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "airlock.db")
	st, err := sqlite.Open(ctx, path, sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	doc := fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: hook}\nspec: {type: %s, url: %q, secretEnv: %q}\n", sinkType, url, secretEnv)
	if secretEnv == "" {
		doc = fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: hook}\nspec: {type: %s, url: %q}\n", sinkType, url)
	}
	scheme := server.NewScheme()
	objs, err := scheme.Decode("sink.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.New(st, scheme).Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	return st, c, newDeliverer(st, c)
}

func newDeliverer(st store.Store, c *clock) *notify.Deliverer {
	return &notify.Deliverer{Store: st, Now: c.Now, Getenv: func(k string) string {
		if k == "AIRLOCK_HOOK_SECRET" {
			return secret
		}
		return ""
	}}
}

func enqueue(t *testing.T, st store.Store) {
	t.Helper()
	err := st.Write(context.Background(), store.Actor{Name: "test"}, func(tx store.Tx) error {
		n, err := notify.Enqueue(context.Background(), tx, notify.Event{Type: notify.PromotionBlocked, Subject: "shop 1.4.0 → prod", Message: "blocked by 1 gate(s): sast", Data: map[string]string{"app": "shop"}})
		if err == nil && n != 1 {
			err = fmt.Errorf("queued %d, want 1", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func only(t *testing.T, st store.Store) notify.NotificationStatus {
	t.Helper()
	objs, err := st.List(context.Background(), notify.NotificationKind, nil)
	if err != nil || len(objs) != 1 {
		t.Fatalf("want one notification, got %d (%v)", len(objs), err)
	}
	var s notify.NotificationStatus
	if err := objs[0].DecodeStatus(&s); err != nil {
		t.Fatal(err)
	}
	if objs[0].Metadata.Labels["state"] != string(s.State) {
		t.Fatalf("state label %q does not follow state %q", objs[0].Metadata.Labels["state"], s.State)
	}
	return s
}

func run(t *testing.T, d *notify.Deliverer) (int, int) {
	t.Helper()
	ok, failed, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ok, failed
}

func TestDeliverSignedWebhook(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, http.StatusNoContent)
	st, c, d := setup(t, "webhook", rcv.srv.URL, "AIRLOCK_HOOK_SECRET")
	enqueue(t, st)
	if ok, failed := run(t, d); ok != 1 || failed != 0 {
		t.Fatalf("delivered %d failed %d", ok, failed)
	}
	s := only(t, st)
	if s.State != notify.StateDelivered || s.Attempts != 1 || len(s.Log) != 1 || s.Log[0].Status != 204 {
		t.Fatalf("status after delivery: %+v", s)
	}
	if ok, _ := run(t, d); ok != 0 || len(rcv.requests()) != 1 {
		t.Fatal("a delivered notification was sent again")
	}
	req := rcv.requests()[0]
	var body notify.WebhookBody
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Event != notify.PromotionBlocked || body.Subject != "shop 1.4.0 → prod" || body.Data["app"] != "shop" || body.ID == "" || !body.Time.Equal(c.Now()) {
		t.Fatalf("body: %+v", body)
	}
	// The documented receiver procedure accepts it, and refuses a
	// tampered body, a wrong key and a replay after five minutes.
	ts, sig := req.header.Get(notify.TimestampHeader), req.header.Get(notify.SignatureHeader)
	if ts != strconv.FormatInt(c.Now().Unix(), 10) {
		t.Fatalf("timestamp header %q", ts)
	}
	// The documented procedure, by hand: HMAC-SHA256 over "<ts>.<body>".
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(req.body)))
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Fatalf("signature %q, want %q", sig, want)
	}
	later := strconv.FormatInt(c.Now().Unix()+1, 10)
	if notify.Verify([]byte(secret), later, sig, req.body, c.Now(), 5*time.Minute) == nil {
		t.Fatal("a changed timestamp verified")
	}
	if err := notify.Verify([]byte(secret), ts, sig, req.body, c.Now(), 5*time.Minute); err != nil {
		t.Fatalf("genuine request refused: %v", err)
	}
	tampered := append([]byte(nil), req.body...)
	tampered[len(tampered)-2] ^= 1
	if notify.Verify([]byte(secret), ts, sig, tampered, c.Now(), 5*time.Minute) == nil {
		t.Fatal("tampered body verified")
	}
	if notify.Verify([]byte("other"), ts, sig, req.body, c.Now(), 5*time.Minute) == nil {
		t.Fatal("wrong key verified")
	}
	if notify.Verify([]byte(secret), ts, sig, req.body, c.Now().Add(6*time.Minute), 5*time.Minute) == nil {
		t.Fatal("replay after six minutes verified")
	}
}

func TestRetryWithBackoffThenDeliver(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 500, 503, 200)
	st, c, d := setup(t, "webhook", rcv.srv.URL, "")
	enqueue(t, st)
	if ok, failed := run(t, d); ok != 0 || failed != 1 {
		t.Fatalf("first attempt: delivered %d failed %d", ok, failed)
	}
	s := only(t, st)
	if s.State != notify.StatePending || s.Attempts != 1 || !s.NextAttemptAt.Equal(c.Now().Add(10*time.Second)) || s.LastError == "" {
		t.Fatalf("after one failure: %+v", s)
	}
	c.Add(9 * time.Second)
	run(t, d)
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("retried before the backoff ended: %d requests", n)
	}
	c.Add(time.Second)
	run(t, d) // 503
	s = only(t, st)
	if s.Attempts != 2 || !s.NextAttemptAt.Equal(c.Now().Add(20*time.Second)) {
		t.Fatalf("second backoff is not doubled: %+v", s)
	}
	c.Add(20 * time.Second)
	if ok, _ := run(t, d); ok != 1 {
		t.Fatal("third attempt not delivered")
	}
	s = only(t, st)
	if s.State != notify.StateDelivered || s.Attempts != 3 || len(s.Log) != 3 || s.Log[0].Status != 500 || s.Log[1].Status != 503 || s.Log[2].Status != 200 {
		t.Fatalf("log: %+v", s)
	}
}

func TestFailedAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 500)
	st, c, d := setup(t, "webhook", rcv.srv.URL, "")
	enqueue(t, st)
	for i := 0; i < notify.MaxAttempts+3; i++ {
		run(t, d)
		c.Add(notify.MaxBackoff)
	}
	s := only(t, st)
	if s.State != notify.StateFailed || s.Attempts != notify.MaxAttempts || len(rcv.requests()) != notify.MaxAttempts {
		t.Fatalf("after max attempts: %+v, %d requests", s, len(rcv.requests()))
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 9: 2560 * time.Second, 10: time.Hour, 40: time.Hour} {
		if got := notify.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestSlackBody(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 200)
	st, _, d := setup(t, "slack", rcv.srv.URL, "")
	enqueue(t, st)
	if ok, _ := run(t, d); ok != 1 {
		t.Fatal("not delivered")
	}
	var body map[string]any
	if err := json.Unmarshal(rcv.requests()[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 1 || body["text"] != "*shop 1.4.0 → prod*\nblocked by 1 gate(s): sast" {
		t.Fatalf("slack body: %s", rcv.requests()[0].body)
	}
}

func TestMissingKeyFailsTheAttempt(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 200)
	st, c, _ := setup(t, "webhook", rcv.srv.URL, "UNSET_SECRET")
	enqueue(t, st)
	if ok, failed := run(t, newDeliverer(st, c)); ok != 0 || failed != 1 || len(rcv.requests()) != 0 {
		t.Fatalf("an unsigned request was sent for a signed sink: delivered %d failed %d", ok, failed)
	}
}

func TestPendingSurvivesRestart(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 200)
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "airlock.db")
	st, err := sqlite.Open(ctx, path, sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	scheme := server.NewScheme()
	objs, err := scheme.Decode("sink.yaml", []byte(fmt.Sprintf("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: hook}\nspec: {type: webhook, url: %q}\n", rcv.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.New(st, scheme).Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	enqueue(t, st)
	if err := st.Close(); err != nil { // the server stops before delivering
		t.Fatal(err)
	}
	st2, err := sqlite.Open(ctx, path, sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if ok, _ := run(t, newDeliverer(st2, c)); ok != 1 || len(rcv.requests()) != 1 {
		t.Fatal("the queued notification was not delivered after the restart")
	}
	if s := only(t, st2); s.State != notify.StateDelivered {
		t.Fatalf("after restart: %+v", s)
	}
}

func TestRedirectIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	other := newReceiver(t, 200)
	redirect := httptest.NewServer(http.RedirectHandler(other.srv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	st, _, d := setup(t, "webhook", redirect.URL, "")
	enqueue(t, st)
	if ok, failed := run(t, d); ok != 0 || failed != 1 || len(other.requests()) != 0 {
		t.Fatalf("a redirect was followed: delivered %d failed %d", ok, failed)
	}
	if s := only(t, st); s.Log[0].Status != http.StatusFound {
		t.Fatalf("log: %+v", s.Log)
	}
}

func TestURLFromTheEnvironment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rcv := newReceiver(t, 200)
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	scheme := server.NewScheme()
	objs, err := scheme.Decode("sink.yaml", []byte("apiVersion: airlock.dev/v1\nkind: Sink\nmetadata: {name: hook}\nspec: {type: slack, urlEnv: AIRLOCK_SLACK_URL}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.New(st, scheme).Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	obj, _ := st.Get(ctx, notify.SinkKind, "hook")
	if strings.Contains(string(obj.Spec), "http") {
		t.Fatalf("the sink object holds a URL: %s", obj.Spec)
	}
	enqueue(t, st)
	unset := &notify.Deliverer{Store: st, Now: c.Now, Getenv: func(string) string { return "" }}
	if ok, failed := run(t, unset); ok != 0 || failed != 1 || !strings.Contains(only(t, st).LastError, "AIRLOCK_SLACK_URL") {
		t.Fatalf("unset urlEnv: delivered %d failed %d, last error %q", ok, failed, only(t, st).LastError)
	}
	c.Add(time.Hour)
	set := &notify.Deliverer{Store: st, Now: c.Now, Getenv: func(k string) string {
		if k == "AIRLOCK_SLACK_URL" {
			return rcv.srv.URL
		}
		return ""
	}}
	if ok, _ := run(t, set); ok != 1 || len(rcv.requests()) != 1 {
		t.Fatalf("urlEnv set: delivered %d, %d requests", ok, len(rcv.requests()))
	}
}
