package incident_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/resource"
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

func newService(t *testing.T) (*incident.Service, store.Store, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return incident.New(st), st, c
}

func decode(t *testing.T, o *resource.Object) (incident.Spec, incident.Status) {
	t.Helper()
	var (
		spec incident.Spec
		st   incident.Status
	)
	if err := o.DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if err := o.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	return spec, st
}

func TestOpenNamesBySequenceWithinTheDay(t *testing.T) {
	t.Parallel()
	svc, _, c := newService(t)
	ctx := context.Background()
	open := func() string {
		t.Helper()
		o, err := svc.Open(ctx, store.Actor{Name: "alice"}, incident.OpenRequest{Severity: "sev2", Summary: "checkout returns 500"})
		if err != nil {
			t.Fatal(err)
		}
		return o.Metadata.Name
	}
	got := []string{open(), open()}
	c.Add(24 * time.Hour)
	got = append(got, open())
	want := []string{"inc-20261127-001", "inc-20261127-002", "inc-20261128-001"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("incident %d named %s, want %s", i, got[i], want[i])
		}
	}
}

func TestOpenRecordsWhoAndWhen(t *testing.T) {
	t.Parallel()
	svc, st, c := newService(t)
	ctx := context.Background()
	o, err := svc.Open(ctx, store.Actor{Name: "alice"}, incident.OpenRequest{Severity: " SEV1 ", Summary: " payments down ", Reference: "PD-4711"})
	if err != nil {
		t.Fatal(err)
	}
	spec, status := decode(t, o)
	if spec != (incident.Spec{Severity: incident.Sev1, Summary: "payments down", OpenedBy: "alice", Reference: "PD-4711"}) {
		t.Errorf("spec = %+v", spec)
	}
	if status.State != incident.Open || !status.OpenedAt.Equal(c.Now()) || status.ClosedAt != nil {
		t.Errorf("status = %+v", status)
	}
	if o.Metadata.Labels["state"] != "open" || o.Metadata.Labels["severity"] != "sev1" {
		t.Errorf("labels = %v", o.Metadata.Labels)
	}
	var actors []string
	err = st.Audit().Entries(ctx, store.AuditFilter{Kind: incident.Kind}, func(e audit.Entry) error {
		actors = append(actors, e.Actor)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(actors) != 1 || actors[0] != "alice" {
		t.Errorf("audit actors = %v, want [alice]", actors)
	}
}

func TestOpenRejectsInvalidRequests(t *testing.T) {
	t.Parallel()
	svc, st, _ := newService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  incident.OpenRequest
		want string
	}{
		{"unknown severity", incident.OpenRequest{Severity: "sev5", Summary: "x"}, "sev1, sev2, sev3, sev4"},
		{"no severity", incident.OpenRequest{Summary: "x"}, "severity"},
		{"no summary", incident.OpenRequest{Severity: "sev3", Summary: "  "}, "--summary"},
		{"long summary", incident.OpenRequest{Severity: "sev3", Summary: strings.Repeat("x", 501)}, "at most 500"},
		{"long reference", incident.OpenRequest{Severity: "sev3", Summary: "x", Reference: strings.Repeat("r", 201)}, "at most 200"},
	} {
		_, err := svc.Open(ctx, store.Actor{Name: "alice"}, tc.req)
		var inv *incident.InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want an InvalidError mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := svc.Open(ctx, store.Actor{Name: "alice"}, incident.OpenRequest{Severity: "sev4", Summary: strings.Repeat("x", 500)}); err != nil {
		t.Errorf("a 500-character summary: %v", err)
	}
	objs, err := st.List(ctx, incident.Kind, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Errorf("%d incidents stored, want only the valid one", len(objs))
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	svc, st, c := newService(t)
	ctx := context.Background()
	o, err := svc.Open(ctx, store.Actor{Name: "alice"}, incident.OpenRequest{Severity: "sev2", Summary: "checkout down"})
	if err != nil {
		t.Fatal(err)
	}
	name := o.Metadata.Name
	if open, err := incident.IsOpen(ctx, st, name); err != nil || !open {
		t.Fatalf("IsOpen after open = %v, %v", open, err)
	}
	if _, err := svc.Close(ctx, store.Actor{Name: "bob"}, name, " "); !errors.As(err, new(*incident.InvalidError)) {
		t.Errorf("close without resolution: %v, want InvalidError", err)
	}
	if _, err := svc.Close(ctx, store.Actor{Name: "bob"}, "inc-20990101-001", "fixed"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("close unknown: %v, want ErrNotFound", err)
	}
	c.Add(time.Hour)
	closed, err := svc.Close(ctx, store.Actor{Name: "bob"}, name, "rolled back 1.4.1")
	if err != nil {
		t.Fatal(err)
	}
	spec, status := decode(t, closed)
	if spec.OpenedBy != "alice" {
		t.Errorf("openedBy = %q after close", spec.OpenedBy)
	}
	if status.State != incident.Closed || status.ClosedBy != "bob" || status.Resolution != "rolled back 1.4.1" ||
		status.ClosedAt == nil || !status.ClosedAt.Equal(c.Now()) || status.OpenedAt.Equal(c.Now()) {
		t.Errorf("status after close = %+v", status)
	}
	if closed.Metadata.Labels["state"] != "closed" {
		t.Errorf("labels = %v", closed.Metadata.Labels)
	}
	if open, err := incident.IsOpen(ctx, st, name); err != nil || open {
		t.Errorf("IsOpen after close = %v, %v", open, err)
	}
	_, err = svc.Close(ctx, store.Actor{Name: "carol"}, name, "again")
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "already closed by bob") {
		t.Errorf("closing twice: %v, want a conflict naming bob", err)
	}
	if open, err := incident.IsOpen(ctx, st, "inc-20990101-001"); err != nil || open {
		t.Errorf("IsOpen of a missing incident = %v, %v", open, err)
	}
}

func TestConcurrentOpensGetDistinctNames(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	const n = 20
	names := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			o, err := svc.Open(context.Background(), store.Actor{Name: "alice"}, incident.OpenRequest{Severity: "sev3", Summary: "flaky"})
			if err != nil {
				t.Error(err)
				return
			}
			names <- o.Metadata.Name
		})
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for name := range names {
		if seen[name] {
			t.Errorf("%s given twice", name)
		}
		seen[name] = true
	}
	if len(seen) != n || !seen["inc-20261127-020"] {
		t.Errorf("names %v, want inc-20261127-001 to -020", seen)
	}
}

// racingStore makes the first Create of each test lose a race, as when
// another replica took the same name between the list and the create.
type racingStore struct {
	store.Store
	mu    sync.Mutex
	races int
}

type racingTx struct {
	store.Tx
	s *racingStore
}

func (s *racingStore) Write(ctx context.Context, actor store.Actor, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, actor, func(tx store.Tx) error { return fn(racingTx{Tx: tx, s: s}) })
}

func (tx racingTx) Create(ctx context.Context, obj *resource.Object) (*resource.Object, error) {
	tx.s.mu.Lock()
	lose := tx.s.races > 0
	tx.s.races--
	tx.s.mu.Unlock()
	if lose {
		return nil, fmt.Errorf("%s %q exists: %w", obj.Kind, obj.Metadata.Name, store.ErrConflict)
	}
	return tx.Tx.Create(ctx, obj)
}

func TestOpenRetriesALostRace(t *testing.T) {
	t.Parallel()
	_, st, _ := newService(t)
	for _, tc := range []struct {
		races   int
		wantErr bool
	}{{races: 2}, {races: 5, wantErr: true}} {
		rs := &racingStore{Store: st, races: tc.races}
		_, err := incident.New(rs).Open(context.Background(), store.Actor{Name: "alice"}, incident.OpenRequest{Severity: "sev2", Summary: "x"})
		if gotErr := err != nil; gotErr != tc.wantErr || (gotErr && !errors.Is(err, store.ErrConflict)) {
			t.Errorf("%d lost races: err = %v, want error %v", tc.races, err, tc.wantErr)
		}
	}
}
