package breakglass_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/breakglass"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// fakeType is the broker type the tests register; no real broker uses it.
const fakeType = "breakglass-test-fake"

// fakeBroker issues "secret-<grant ID>" credentials and records what it
// was asked. Each test gets its own, chosen by the config's "id".
type fakeBroker struct {
	mu         sync.Mutex
	grants     []string // grant IDs asked for, in order
	revoked    []string // handles revoked
	failGrant  error
	failRevoke error
}

func (f *fakeBroker) Grant(_ context.Context, g broker.Grant) (broker.Issued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants = append(f.grants, g.ID)
	if g.NotAfter.IsZero() || !g.NotAfter.After(g.NotBefore) {
		return broker.Issued{}, fmt.Errorf("grant %s has no end", g.ID) // as the postgres broker refuses
	}
	if f.failGrant != nil {
		return broker.Issued{}, f.failGrant
	}
	return broker.Issued{Credential: map[string]string{"password": "secret-" + g.ID}, Handle: "handle-" + g.ID}, nil
}

func (f *fakeBroker) Revoke(_ context.Context, _ broker.Grant, handle string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRevoke != nil {
		return f.failRevoke
	}
	f.revoked = append(f.revoked, handle)
	return nil
}

func (f *fakeBroker) snapshot() (grants, revoked []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.grants), slices.Clone(f.revoked)
}

func (f *fakeBroker) set(grantErr, revokeErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failGrant, f.failRevoke = grantErr, revokeErr
}

var (
	fakesMu sync.Mutex
	fakes   = map[string]*fakeBroker{}
)

func init() {
	broker.Register(fakeType, func(config json.RawMessage, _ broker.Env) (broker.Broker, error) {
		var c struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(config, &c); err != nil {
			return nil, err
		}
		fakesMu.Lock()
		defer fakesMu.Unlock()
		f, ok := fakes[c.ID]
		if !ok {
			return nil, fmt.Errorf("no fake broker %q", c.ID)
		}
		return f, nil
	})
}

func newFake(t *testing.T) (*fakeBroker, json.RawMessage) {
	fakesMu.Lock()
	defer fakesMu.Unlock()
	f := &fakeBroker{}
	fakes[t.Name()] = f
	cfg, _ := json.Marshal(map[string]string{"id": t.Name()})
	return f, cfg
}

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

type env struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	clock *clock
	svc   *breakglass.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := seal.LoadOrCreateKey(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: context.Background(), st: st, clock: c, svc: breakglass.New(st, sealer, c.Now)}
}

func (e *env) create(kind, name string, spec any) {
	e.t.Helper()
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: kind, Metadata: resource.Metadata{Name: name}}
	if err := obj.SetSpec(spec); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Write(e.ctx, store.Actor{Name: "admin"}, func(tx store.Tx) error {
		_, err := tx.Create(e.ctx, obj)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// breakGlass declares prod-root (validFor 1h), with the fake broker when
// cfg is not nil.
func (e *env) breakGlass(cfg json.RawMessage) {
	e.t.Helper()
	spec := breakglass.Spec{Environment: "prod", Description: "root of the prod database", ValidFor: "1h"}
	if cfg != nil {
		spec.Broker = &breakglass.BrokerSpec{Type: fakeType, Config: cfg, Grants: []string{"superuser"}}
	}
	if err := breakglass.Validate(spec); err != nil {
		e.t.Fatal(err)
	}
	e.create(breakglass.Kind, "prod-root", spec)
}

func (e *env) sink(name string, events ...string) {
	e.t.Helper()
	e.create(notify.SinkKind, name, notify.SinkSpec{Type: notify.Webhook, URL: "https://hooks.example.com/" + name, Events: events})
}

func (e *env) status() breakglass.Status {
	e.t.Helper()
	obj, err := e.st.Get(e.ctx, breakglass.Kind, "prod-root")
	if err != nil {
		e.t.Fatal(err)
	}
	var st breakglass.Status
	if err := obj.DecodeStatus(&st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) store(cred string) *breakglass.Stored {
	e.t.Helper()
	s, err := e.svc.Store(e.ctx, store.Actor{Name: "admin"}, "prod-root", []byte(cred))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) open(who string) *breakglass.Opened {
	e.t.Helper()
	o, err := e.svc.Open(e.ctx, store.Actor{Name: who}, "prod-root", "orders-db is down and the operator is unreachable")
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) list(kind string) []*resource.Object {
	e.t.Helper()
	objs, err := e.st.List(e.ctx, kind, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return objs
}

func (e *env) notifications(event string) map[string]notify.NotificationSpec {
	e.t.Helper()
	out := map[string]notify.NotificationSpec{}
	for _, o := range e.list(notify.NotificationKind) {
		var ns notify.NotificationSpec
		if err := o.DecodeSpec(&ns); err != nil {
			e.t.Fatal(err)
		}
		if ns.Event == event {
			out[ns.Sink] = ns
		}
	}
	return out
}

func (e *env) auditActions(action string) []audit.Entry {
	e.t.Helper()
	var out []audit.Entry
	if err := e.st.Audit().Entries(e.ctx, store.AuditFilter{}, func(en audit.Entry) error {
		if en.Action == action {
			out = append(out, en)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestStoreSealsTheCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	const secret = "postgres://root:hunter2-hunter2@db/prod"
	got := e.store(secret)
	if !strings.HasPrefix(got.Fingerprint, "sha256:") || len(got.Fingerprint) != len("sha256:")+12 {
		t.Errorf("fingerprint %q, want sha256: and 12 hex digits", got.Fingerprint)
	}
	st := e.status()
	if !strings.HasPrefix(st.Sealed, seal.Prefix) || st.StoredBy != "admin" || st.StoredAt == nil || st.Fingerprint != got.Fingerprint {
		t.Errorf("status after store: %+v", st)
	}
	obj, _ := e.st.Get(e.ctx, breakglass.Kind, "prod-root")
	if b, _ := json.Marshal(obj); bytes.Contains(b, []byte("hunter2")) {
		t.Errorf("the stored object holds the credential in the clear: %s", b)
	}
	if got := e.store("pw-with-newline\r\n"); got.Fingerprint != breakglass.Fingerprint([]byte("pw-with-newline")) {
		t.Errorf("a file's trailing newline was stored as part of the credential")
	}
	for _, bad := range []string{"", "  \n", "\xff\xfe"} {
		if _, err := e.svc.Store(e.ctx, store.Actor{Name: "admin"}, "prod-root", []byte(bad)); !errors.As(err, new(*catalog.InvalidError)) {
			t.Errorf("store %q: %v, want an InvalidError", bad, err)
		}
	}
	if _, err := e.svc.Store(e.ctx, store.Actor{Name: "admin"}, "missing", []byte("x")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("store of an unknown break-glass: %v, want not found", err)
	}
}

func TestOpenAlertsOpensIncidentAndReviewAndAnswersTheCredentialOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	e.sink("pager")
	e.sink("chat", notify.Rollback) // asks for other events: a break-glass open reaches it anyway
	e.store("root-password-1")
	opened := e.open("alice")

	if opened.Credential != "root-password-1" {
		t.Errorf("credential %q, want the stored one", opened.Credential)
	}
	if want := e.clock.Now().Add(time.Hour); !opened.ValidUntil.Equal(want) {
		t.Errorf("valid until %s, want %s (validFor 1h)", opened.ValidUntil, want)
	}
	// The incident: sev1, naming the break-glass and the opener.
	inc, err := e.st.Get(e.ctx, incident.Kind, opened.Incident)
	if err != nil {
		t.Fatal(err)
	}
	var is incident.Spec
	if err := inc.DecodeSpec(&is); err != nil {
		t.Fatal(err)
	}
	if is.Severity != incident.Sev1 || !strings.Contains(is.Summary, "prod-root") || !strings.Contains(is.Summary, "alice") || is.OpenedBy != "alice" {
		t.Errorf("incident %+v", is)
	}
	if open, _ := incident.IsOpen(e.ctx, e.st, opened.Incident); !open {
		t.Errorf("incident %s is not open", opened.Incident)
	}
	// The review: due in 24h, one tech-lead and one sre.
	rv, err := e.st.Get(e.ctx, promotion.ReviewKind, opened.Review)
	if err != nil {
		t.Fatal(err)
	}
	var rs promotion.ReviewSpec
	if err := rv.DecodeSpec(&rs); err != nil {
		t.Fatal(err)
	}
	if rs.BreakGlass != "prod-root" || rs.RequestedBy != "alice" || rs.Incident != opened.Incident || rs.Chain["tech-lead"] != 1 || rs.Chain["sre"] != 1 || len(rs.Chain) != 2 ||
		!rs.DueAt.Equal(e.clock.Now().Add(24*time.Hour)) || rs.Environment != "prod" {
		t.Errorf("review %+v", rs)
	}
	// The opener may not review their own use.
	promos := promotion.New(e.st)
	if _, err := promos.Complete(e.ctx, store.Actor{Name: "alice"}, promotion.Completion{Review: opened.Review, Outcome: promotion.OutcomeAccepted, Reason: "fine", Roles: []string{"sre", "tech-lead"}}); !errors.As(err, new(*promotion.PolicyError)) {
		t.Errorf("the opener completing the review: %v, want a PolicyError", err)
	}
	// Every sink is alerted at once.
	got := e.notifications(notify.BreakGlassOpened)
	if len(got) != 2 || got["pager"].Data["incident"] != opened.Incident || got["chat"].Data["openedBy"] != "alice" {
		t.Errorf("breakglass.opened notifications: %+v, want one per sink", got)
	}
	if opened.Notified != 2 {
		t.Errorf("notified %d sinks, want 2", opened.Notified)
	}
	st := e.status()
	if st.OpenedAt == nil || st.OpenedBy != "alice" || !strings.Contains(st.Reason, "orders-db") || !st.RotationDue || st.Incident != opened.Incident || st.Review != opened.Review {
		t.Errorf("status after open: %+v", st)
	}
	if n := len(e.auditActions("refused-breakglass-open")); n != 0 {
		t.Errorf("%d refused opens audited, want 0", n)
	}
}

func TestSecondOpenIsRefusedUntilANewCredentialIsStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	e.store("root-password-1")
	e.open("alice")
	_, err := e.svc.Open(e.ctx, store.Actor{Name: "bob"}, "prod-root", "still broken, I need it too")
	var outstanding *breakglass.OpenOutstandingError
	if !errors.As(err, &outstanding) || !errors.Is(err, store.ErrConflict) || outstanding.By != "alice" {
		t.Fatalf("second open: %v, want an OpenOutstandingError (conflict) naming alice", err)
	}
	if refused := e.auditActions("refused-breakglass-open"); len(refused) != 1 || refused[0].Actor != "bob" {
		t.Errorf("refused opens audited: %+v, want bob's", refused)
	}
	if n := len(e.list(incident.Kind)); n != 1 {
		t.Errorf("%d incidents after a refused open, want 1", n)
	}
	e.store("root-password-2")
	if got := e.open("bob"); got.Credential != "root-password-2" {
		t.Errorf("open after a new store answered %q", got.Credential)
	}
	if n := len(e.list(incident.Kind)); n != 2 {
		t.Errorf("%d incidents, want 2", n)
	}
}

func TestOpenRefusesBadInputAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	tests := []struct {
		name, reason string
		setup        func()
		check        func(error) bool
	}{
		{"no credential", "orders-db is down hard", nil, func(err error) bool { return errors.As(err, new(*catalog.PolicyError)) }},
		{"empty reason", "", func() { e.store("pw-123") }, func(err error) bool { return errors.As(err, new(*catalog.InvalidError)) }},
		{"short reason", "down", nil, func(err error) bool { return errors.As(err, new(*catalog.InvalidError)) }},
		{"unknown", "orders-db is down hard", nil, func(err error) bool { return errors.Is(err, store.ErrNotFound) }},
	}
	for _, tc := range tests {
		if tc.setup != nil {
			tc.setup()
		}
		name := "prod-root"
		if tc.name == "unknown" {
			name = "nope"
		}
		_, err := e.svc.Open(e.ctx, store.Actor{Name: "alice"}, name, tc.reason)
		if !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if n := len(e.list(incident.Kind)); n != 0 {
		t.Errorf("%d incidents opened by refused opens", n)
	}
	if st := e.status(); st.OpenedAt != nil {
		t.Errorf("refused opens opened it: %+v", st)
	}
	if n := len(e.auditActions("refused-breakglass-open")); n != 3 {
		t.Errorf("%d refused opens audited, want 3 (an unknown name is not)", n)
	}
}

func TestRotationThroughTheBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fake, cfg := newFake(t)
	e.breakGlass(cfg)
	e.store("by-hand")
	e.open("alice")

	res, err := e.svc.RunOnce(e.ctx)
	if err != nil || len(res.Rotated) != 0 {
		t.Fatalf("within the window: %+v, %v; want nothing rotated", res, err)
	}
	e.clock.Add(time.Hour)
	res, err = e.svc.RunOnce(e.ctx)
	if err != nil || !slices.Equal(res.Rotated, []string{"prod-root"}) {
		t.Fatalf("after the window: %+v, %v; want prod-root rotated", res, err)
	}
	grants, revoked := fake.snapshot()
	if !slices.Equal(grants, []string{"bg-prod-root-1"}) || len(revoked) != 0 {
		t.Errorf("broker asked grants %v, revoked %v; want bg-prod-root-1 and no revocation (the first credential was stored by hand)", grants, revoked)
	}
	st := e.status()
	if st.OpenedAt != nil || st.RotationDue || st.Handle != "handle-bg-prod-root-1" || st.Generation != 1 || st.StoredBy != breakglass.SystemActor {
		t.Errorf("status after rotation: %+v", st)
	}
	if got := e.open("bob").Credential; got != "secret-bg-prod-root-1" {
		t.Errorf("the rotated credential opens as %q", got)
	}
	// The second rotation revokes the broker's first credential.
	e.clock.Add(time.Hour)
	if res, err = e.svc.RunOnce(e.ctx); err != nil || !slices.Equal(res.Revoked, []string{"prod-root"}) {
		t.Fatalf("second rotation: %+v, %v", res, err)
	}
	grants, revoked = fake.snapshot()
	if !slices.Equal(grants, []string{"bg-prod-root-1", "bg-prod-root-2"}) || !slices.Equal(revoked, []string{"handle-bg-prod-root-1"}) {
		t.Errorf("grants %v, revoked %v", grants, revoked)
	}
	st = e.status()
	if st.Rotation != nil {
		t.Errorf("rotation work left after success: %+v", st.Rotation)
	}
	// A credential not in use is renewed once half its life is gone.
	if want := e.clock.Now().Add(180 * 24 * time.Hour); st.ExpiresAt == nil || !st.ExpiresAt.Equal(want) {
		t.Fatalf("expires at %v, want %s (twice drillEvery)", st.ExpiresAt, want)
	}
	e.clock.Add(90*24*time.Hour - time.Minute)
	if res, err := e.svc.RunOnce(e.ctx); err != nil || len(res.Rotated) != 0 {
		t.Fatalf("before half its life: %+v, %v", res, err)
	}
	e.clock.Add(time.Minute)
	if res, err := e.svc.RunOnce(e.ctx); err != nil || !slices.Equal(res.Rotated, []string{"prod-root"}) {
		t.Fatalf("at half its life: %+v, %v; want a renewal", res, err)
	}
	grants, revoked = fake.snapshot()
	if !slices.Equal(grants, []string{"bg-prod-root-1", "bg-prod-root-2", "bg-prod-root-3"}) || !slices.Equal(revoked, []string{"handle-bg-prod-root-1", "handle-bg-prod-root-2"}) {
		t.Errorf("after renewal: grants %v, revoked %v", grants, revoked)
	}
}

func TestRotationFailuresAreRetriedWithBackoffAndNeverForgotten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fake, cfg := newFake(t)
	e.breakGlass(cfg)
	e.store("by-hand")
	e.open("alice")
	e.clock.Add(time.Hour)
	fake.set(errors.New("database unreachable"), nil)

	res, err := e.svc.RunOnce(e.ctx)
	if err == nil || !slices.Equal(res.Failed, []string{"prod-root"}) {
		t.Fatalf("failing broker: %+v, %v", res, err)
	}
	st := e.status()
	if st.Rotation == nil || st.Rotation.Attempts != 1 || !strings.Contains(st.Rotation.LastError, "database unreachable") ||
		!st.Rotation.NextAttempt.Equal(e.clock.Now().Add(breakglass.RetryBase)) || st.Rotation.Grant != "bg-prod-root-1" || !st.RotationDue {
		t.Fatalf("status after a failed rotation: %+v %+v", st, st.Rotation)
	}
	if _, err := e.svc.RunOnce(e.ctx); err != nil {
		t.Fatalf("during backoff: %v", err)
	}
	if grants, _ := fake.snapshot(); len(grants) != 1 {
		t.Errorf("grants during backoff: %v, want no new attempt", grants)
	}
	e.clock.Add(breakglass.RetryBase)
	if _, err := e.svc.RunOnce(e.ctx); err == nil {
		t.Fatal("second attempt succeeded with a failing broker")
	}
	if st := e.status(); st.Rotation.Attempts != 2 || !st.Rotation.NextAttempt.Equal(e.clock.Now().Add(2*breakglass.RetryBase)) {
		t.Errorf("second failure: %+v, want attempt 2 backing off %s", st.Rotation, 2*breakglass.RetryBase)
	}
	fake.set(nil, nil)
	e.clock.Add(2 * breakglass.RetryBase)
	if res, err := e.svc.RunOnce(e.ctx); err != nil || !slices.Equal(res.Rotated, []string{"prod-root"}) {
		t.Fatalf("after recovery: %+v, %v", res, err)
	}
	// Every attempt asked for the same grant, so the broker replaces
	// whatever an interrupted one made.
	if grants, _ := fake.snapshot(); !slices.Equal(grants, []string{"bg-prod-root-1", "bg-prod-root-1", "bg-prod-root-1"}) {
		t.Errorf("grants %v, want bg-prod-root-1 three times", grants)
	}

	// A failing revocation is kept and retried.
	e.open("bob")
	e.clock.Add(time.Hour)
	fake.set(nil, errors.New("revoke refused"))
	if res, err := e.svc.RunOnce(e.ctx); err == nil || !slices.Equal(res.Rotated, []string{"prod-root"}) || !slices.Equal(res.Failed, []string{"prod-root"}) {
		t.Fatalf("rotation with a failing revoke: %+v, %v", res, err)
	}
	if st := e.status(); st.Rotation == nil || len(st.Rotation.Revoke) != 1 || st.Rotation.Revoke[0].Handle != "handle-bg-prod-root-1" || !strings.Contains(st.Rotation.LastError, "revoke refused") {
		t.Fatalf("pending revoke not recorded: %+v", st.Rotation)
	}
	// A credential stored by hand meanwhile queues the broker's current
	// one for revocation too, without dropping the one still owed.
	e.store("by-hand-again")
	if st := e.status(); st.Rotation == nil || len(st.Rotation.Revoke) != 2 || st.Handle != "" {
		t.Fatalf("after a store by hand: %+v", st.Rotation)
	}
	fake.set(nil, nil)
	e.clock.Add(breakglass.RetryMax)
	if res, err := e.svc.RunOnce(e.ctx); err != nil || !slices.Equal(res.Revoked, []string{"prod-root"}) {
		t.Fatalf("revoke retry: %+v, %v", res, err)
	}
	if _, revoked := fake.snapshot(); !slices.Equal(revoked, []string{"handle-bg-prod-root-1", "handle-bg-prod-root-2"}) {
		t.Errorf("revoked %v, want both replaced credentials", revoked)
	}
	if st := e.status(); st.Rotation != nil {
		t.Errorf("rotation work left: %+v", st.Rotation)
	}
}

func TestRotationWithoutABrokerStaysDueUntilStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	e.store("by-hand-1")
	e.open("alice")
	e.clock.Add(time.Hour)
	res, err := e.svc.RunOnce(e.ctx)
	if err != nil || !slices.Equal(res.Due, []string{"prod-root"}) {
		t.Fatalf("RunOnce: %+v, %v; want prod-root due", res, err)
	}
	if res, _ := e.svc.RunOnce(e.ctx); len(res.Due) != 0 {
		t.Errorf("reported twice: %+v", res)
	}
	list, err := breakglass.List(e.ctx, e.st, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Credential != breakglass.CredentialRotationDue || !list[0].RotationDue {
		t.Errorf("list: %+v, want rotation due", list)
	}
	if st := e.status(); !st.RotationDue || st.OpenedAt == nil {
		t.Errorf("status: %+v", st)
	}
	if _, err := e.svc.Open(e.ctx, store.Actor{Name: "bob"}, "prod-root", "another outage, please"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("open while rotation is due: %v, want a conflict", err)
	}
	e.store("by-hand-2")
	list, _ = breakglass.List(e.ctx, e.st, e.clock.Now())
	if list[0].Credential != breakglass.CredentialStored || list[0].RotationDue {
		t.Errorf("after store: %+v", list[0])
	}
}

func TestDrill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	e.store("root-password-1")

	overdue, err := breakglass.Overdue(e.ctx, e.st, e.clock.Now())
	if err != nil || len(overdue) != 1 || overdue[0].LastSuccessfulDrill != nil {
		t.Fatalf("never drilled: %+v, %v; want one finding", overdue, err)
	}
	// With no sink the alert would reach nobody: the drill fails.
	d, err := e.svc.Drill(e.ctx, store.Actor{Name: "carol"}, "prod-root")
	if err != nil {
		t.Fatal(err)
	}
	if d.OK || !slices.ContainsFunc(d.Steps, func(s string) bool { return strings.HasPrefix(s, "notify: FAILED") }) {
		t.Errorf("drill without sinks: %+v, want a failed notify step", d)
	}
	if overdue, _ := breakglass.Overdue(e.ctx, e.st, e.clock.Now()); len(overdue) != 1 {
		t.Errorf("a failed drill cleared the finding")
	}

	e.sink("pager")
	d, err = e.svc.Drill(e.ctx, store.Actor{Name: "carol"}, "prod-root")
	if err != nil || !d.OK {
		t.Fatalf("drill: %+v, %v", d, err)
	}
	for _, want := range []string{"credential: stored", "notify: breakglass.drill queued for 1 sink", "incident: skipped", "review: skipped"} {
		if !slices.ContainsFunc(d.Steps, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("steps %q lack %q", d.Steps, want)
		}
	}
	if strings.Contains(strings.Join(d.Steps, "\n"), "root-password-1") {
		t.Error("a drill step shows the credential")
	}
	if n := len(e.notifications(notify.BreakGlassDrill)); n != 1 {
		t.Errorf("%d drill notifications, want 1", n)
	}
	if n := len(e.list(incident.Kind)) + len(e.list(promotion.ReviewKind)); n != 0 {
		t.Errorf("a drill opened %d incidents and reviews", n)
	}
	st := e.status()
	if st.LastDrill == nil || !st.LastDrill.OK || st.LastDrill.By != "carol" || st.OpenedAt != nil || st.RotationDue {
		t.Errorf("status after a drill: %+v", st)
	}
	if overdue, _ := breakglass.Overdue(e.ctx, e.st, e.clock.Now()); len(overdue) != 0 {
		t.Errorf("overdue right after a drill: %+v", overdue)
	}
	e.clock.Add(90*24*time.Hour + time.Minute)
	overdue, _ = breakglass.Overdue(e.ctx, e.st, e.clock.Now())
	if len(overdue) != 1 || overdue[0].LastSuccessfulDrill == nil {
		t.Errorf("91 days on: %+v, want overdue", overdue)
	}
	list, _ := breakglass.List(e.ctx, e.st, e.clock.Now())
	if !list[0].DrillOverdue || list[0].LastDrill == nil {
		t.Errorf("list: %+v", list[0])
	}
	// An outstanding open fails the drill: a real open would be refused.
	e.open("alice")
	if d, _ := e.svc.Drill(e.ctx, store.Actor{Name: "carol"}, "prod-root"); d.OK {
		t.Errorf("drill of an opened credential passed: %+v", d.Steps)
	}
}

// TestCredentialNeverInAuditOrRecords stores, opens, drills and rotates,
// then scans every audit entry and every object for the credentials.
func TestCredentialNeverInAuditOrRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, cfg := newFake(t)
	e.breakGlass(cfg)
	e.sink("pager")
	const secret = "S3cr3t-break-glass-value"
	e.store(secret)
	if _, err := e.svc.Drill(e.ctx, store.Actor{Name: "carol"}, "prod-root"); err != nil {
		t.Fatal(err)
	}
	if got := e.open("alice").Credential; got != secret {
		t.Fatalf("open answered %q", got)
	}
	_, _ = e.svc.Open(e.ctx, store.Actor{Name: "bob"}, "prod-root", "refused one, but audited")
	e.clock.Add(time.Hour)
	if _, err := e.svc.RunOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	rotated := e.open("bob").Credential // secret-bg-prod-root-1, from the fake broker
	var entries int
	if err := e.st.Audit().Entries(e.ctx, store.AuditFilter{}, func(en audit.Entry) error {
		entries++
		b, _ := json.Marshal(en)
		for _, s := range []string{secret, rotated} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("audit entry %d holds a credential: %s", en.Seq, b)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if entries == 0 {
		t.Fatal("no audit entries")
	}
	for _, kind := range []string{breakglass.Kind, incident.Kind, promotion.ReviewKind, notify.NotificationKind} {
		for _, o := range e.list(kind) {
			b, _ := json.Marshal(o)
			for _, s := range []string{secret, rotated} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds a credential", o.Ref())
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	_, cfg := newFake(t)
	good := breakglass.Spec{Environment: "prod", ValidFor: "1h"}
	tests := []struct {
		name string
		edit func(*breakglass.Spec)
		path string // "" means valid
	}{
		{"minimal", func(*breakglass.Spec) {}, ""},
		{"with broker", func(s *breakglass.Spec) { s.Broker = &breakglass.BrokerSpec{Type: fakeType, Config: cfg} }, ""},
		{"5m", func(s *breakglass.Spec) { s.ValidFor = "5m" }, ""},
		{"24h", func(s *breakglass.Spec) { s.ValidFor = "24h" }, ""},
		{"no environment", func(s *breakglass.Spec) { s.Environment = "" }, "spec.environment"},
		{"no validFor", func(s *breakglass.Spec) { s.ValidFor = "" }, "spec.validFor"},
		{"validFor too short", func(s *breakglass.Spec) { s.ValidFor = "4m" }, "spec.validFor"},
		{"validFor too long", func(s *breakglass.Spec) { s.ValidFor = "25h" }, "spec.validFor"},
		{"validFor garbage", func(s *breakglass.Spec) { s.ValidFor = "an hour" }, "spec.validFor"},
		{"drillEvery garbage", func(s *breakglass.Spec) { s.DrillEvery = "quarterly" }, "spec.drillEvery"},
		{"drillEvery too short", func(s *breakglass.Spec) { s.DrillEvery = "1h" }, "spec.drillEvery"},
		{"unknown broker", func(s *breakglass.Spec) { s.Broker = &breakglass.BrokerSpec{Type: "nope"} }, "spec.broker"},
		{"broker without type", func(s *breakglass.Spec) { s.Broker = &breakglass.BrokerSpec{} }, "spec.broker.type"},
		{"empty grant", func(s *breakglass.Spec) {
			s.Broker = &breakglass.BrokerSpec{Type: fakeType, Config: cfg, Grants: []string{""}}
		}, "spec.broker.grants[0]"},
	}
	for _, tc := range tests {
		s := good
		tc.edit(&s)
		err := breakglass.Validate(s)
		var pe *resource.PathError
		switch {
		case tc.path == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.path != "" && (!errors.As(err, &pe) || pe.Path != tc.path):
			t.Errorf("%s: %v, want an error at %s", tc.name, err, tc.path)
		}
	}
}

// TestExampleDecodes checks examples/breakglass.yaml is what apply accepts.
func TestExampleDecodes(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "breakglass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := resource.NewScheme()
	breakglass.Register(s)
	notify.Register(s)
	objs, err := s.Decode("breakglass.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Kind != breakglass.Kind || objs[0].Metadata.Name != "prod-root" {
		t.Fatalf("decoded %d objects: %v", len(objs), objs)
	}
	var spec breakglass.Spec
	if err := objs[0].DecodeSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if spec.Environment != "prod" || spec.ValidFor != "1h" {
		t.Errorf("example spec %+v, want prod and 1h", spec)
	}
}

func TestUsesListsEveryOpenFromItsReview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.breakGlass(nil)
	e.store("pw-1")
	first := e.clock.Now()
	e.open("alice")
	e.clock.Add(2 * time.Hour)
	e.store("pw-2")
	e.open("bob")
	uses, err := breakglass.Uses(e.ctx, e.st, "prod", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) != 2 || uses[0].OpenedBy != "alice" || !uses[0].OpenedAt.Equal(first) || uses[1].OpenedBy != "bob" ||
		uses[0].ReviewPhase != "Open" || !strings.Contains(uses[0].Reason, "orders-db") || uses[0].Incident == "" {
		t.Errorf("uses: %+v", uses)
	}
	if uses, _ := breakglass.Uses(e.ctx, e.st, "prod", first.Add(time.Hour)); len(uses) != 1 || uses[0].OpenedBy != "bob" {
		t.Errorf("uses since an hour after the first: %+v", uses)
	}
	if uses, _ := breakglass.Uses(e.ctx, e.st, "staging", time.Time{}); len(uses) != 0 {
		t.Errorf("uses in staging: %+v", uses)
	}
}

func TestGuardKeepsWhatIsOwed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := resource.NewScheme()
	breakglass.Register(s)
	cat := catalog.New(e.st, s)
	cat.SetGuard(breakglass.Kind, breakglass.Guard)
	apply := func(doc string) error {
		objs, err := s.Decode("test.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cat.Apply(e.ctx, store.Actor{Name: "admin"}, objs, false)
		return err
	}
	const doc = "apiVersion: airlock.dev/v1\nkind: BreakGlass\nmetadata: {name: prod-root}\nspec: {environment: prod, validFor: 1h}\n"
	if err := apply(doc); err != nil {
		t.Fatal(err)
	}
	e.store("pw-1")
	if err := apply(strings.Replace(doc, "1h", "30m", 1)); err != nil {
		t.Fatal(err)
	}
	if st := e.status(); st.Sealed == "" {
		t.Error("an apply dropped the sealed credential")
	}
	e.open("alice")
	if err := cat.Delete(e.ctx, store.Actor{Name: "admin"}, breakglass.Kind, "prod-root", 0); !errors.As(err, new(*catalog.PolicyError)) {
		t.Fatalf("delete of an opened break-glass: %v, want a PolicyError", err)
	}
	e.store("pw-2")
	if err := cat.Delete(e.ctx, store.Actor{Name: "admin"}, breakglass.Kind, "prod-root", 0); err != nil {
		t.Fatalf("delete once replaced: %v", err)
	}
}
