package access_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/access"
	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/server/servertest"
	"github.com/airlock-dev/airlock/internal/store"
)

type world struct {
	t      *testing.T
	dir    string
	clock  *servertest.Clock
	st     store.Store
	deps   api.Deps
	sealer *seal.Sealer
	svc    *access.Service
	env    map[string]string
}

// newWorld: a real SQLite store with a fake clock (Monday 10:00 UTC), the
// server's wiring, and an exec broker of two shell scripts: grant prints a
// credential, revoke records the handle it revoked (and fails while a FAIL
// file exists).
func newWorld(t *testing.T) *world {
	t.Helper()
	sw := servertest.New(t, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	sealer, err := seal.LoadOrCreateKey(filepath.Join(sw.Dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: sw.Dir, clock: sw.Clock, st: sw.Store, deps: sw.Deps, sealer: sealer, env: map[string]string{}}
	w.script("grant", `#!/bin/sh
printf '{"credential": {"token": "secret-%s"}, "handle": "h-%s"}' "$AIRLOCK_ACCESS_ID" "$AIRLOCK_ACCESS_ID"
`)
	w.script("revoke", `#!/bin/sh
[ -e "$(dirname "$0")/FAIL" ] && { echo "the target is down" >&2; exit 1; }
echo "$AIRLOCK_ACCESS_HANDLE" >> "$(dirname "$0")/revoked"
`)
	w.restart()
	w.apply(world0 + strings.NewReplacer("GRANT", filepath.Join(w.dir, "grant"), "REVOKE", filepath.Join(w.dir, "revoke")).Replace(resources))
	return w
}

func (w *world) script(name, body string) {
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(body), 0o755); err != nil {
		w.t.Fatal(err)
	}
}

// restart is a new airlock process over the same store and seal key, which
// reconciles before it serves.
func (w *world) restart() {
	w.svc = access.New(w.st, w.sealer, func(k string) string { return w.env[k] }, w.clock.Now)
	if _, err := w.svc.RunOnce(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) apply(doc string) {
	w.t.Helper()
	objs, err := w.deps.Scheme.Decode("test.yaml", []byte(doc))
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.deps.Catalog.Apply(context.Background(), store.Actor{Name: "admin"}, objs, false); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) get(name string) (access.RequestSpec, access.Status) {
	w.t.Helper()
	spec, st, _ := servertest.Get[access.RequestSpec, access.Status](w.t, w.st, access.RequestKind, name)
	return spec, st
}

func (w *world) request(who string, ask access.Ask) (string, error) {
	o, err := w.svc.Request(context.Background(), store.Actor{Name: who}, ask)
	if err != nil {
		return "", err
	}
	return o.Metadata.Name, nil
}

func (w *world) vote(who string, roles []string, name, decision string) error {
	_, err := w.svc.Vote(context.Background(), store.Actor{Name: who}, access.VoteRequest{Request: name, Decision: decision, Reason: "checked", Roles: roles})
	return err
}

func (w *world) revoked() string {
	b, _ := os.ReadFile(filepath.Join(w.dir, "revoked"))
	return string(b)
}

const world0 = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, isolation: {level: labels, network: staging-net, credentials: staging-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec: {tier: production, data: production, isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: one machine only}}}
---
apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: pager}
spec: {type: webhook, url: "http://127.0.0.1:1/hook"}
---
`

const resources = `apiVersion: airlock.dev/v1
kind: AccessResource
metadata: {name: orders-db}
spec:
  environment: prod
  team: orders
  broker: {type: exec, config: {grant: [GRANT], revoke: [REVOKE]}}
  maxDuration: 8h
  roles:
    readonly: {approvals: {sre: 1}, grants: [pg_read_all_data]}
    readwrite: {approvals: {sre: 1, tech-lead: 1}, highRisk: true, grants: [pg_write_all_data], maxDuration: 2h}
---
apiVersion: airlock.dev/v1
kind: Team
metadata: {name: orders}
spec: {members: [alice, bob]}
`

func ask(role, d string) access.Ask {
	return access.Ask{Environment: "prod", Resource: "orders-db", Role: role, For: d, Reason: "INC-42: check the stuck orders"}
}

func TestRefusedRequestsChangeNothing(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name string
		ask  access.Ask
		want string
	}{
		{"no reason", access.Ask{Environment: "prod", Resource: "orders-db", Role: "readonly", For: "1h"}, "a reason of at least 10 characters"},
		{"unknown resource", access.Ask{Environment: "prod", Resource: "payments-db", Role: "readonly", For: "1h", Reason: "because I must"}, `there is no access resource "payments-db"`},
		{"unknown role", access.Ask{Environment: "prod", Resource: "orders-db", Role: "admin", For: "1h", Reason: "because I must"}, `has no role "admin"; its roles are readonly, readwrite`},
		{"above the role's cap", ask("readwrite", "3h"), "readwrite of orders-db on prod may last at most 2h0m0s; you asked for 3h0m0s"},
		{"above the resource's cap", ask("readonly", "9h"), "at most 8h0m0s"},
		{"not a duration", ask("readonly", "soon"), `duration "soon" must be a Go duration`},
		{"wrong environment", access.Ask{Environment: "staging", Resource: "orders-db", Role: "readonly", For: "1h", Reason: "because I must"}, "resource orders-db is in environment prod, not staging"},
		{"malformed public key", access.Ask{Environment: "prod", Resource: "orders-db", Role: "readonly", For: "1h", Reason: "because I must", PublicKey: "ssh-ed25519 not-base64"}, "not in authorized_keys format"},
		{"closed incident", access.Ask{Environment: "prod", Resource: "orders-db", Role: "readonly", For: "1h", Reason: "because I must", Incident: "inc-20000101-001"}, "does not exist or is closed"},
	} {
		_, err := w.request("alice", tc.ask)
		var pe *access.PolicyError
		var ie *access.InvalidError
		if err == nil || !(errors.As(err, &pe) || errors.As(err, &ie)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	objs, err := w.st.List(context.Background(), access.RequestKind, nil)
	if err != nil || len(objs) != 0 {
		t.Fatalf("refused requests left %d objects (%v)", len(objs), err)
	}
	n := 0
	_ = w.st.Audit().Entries(context.Background(), store.AuditFilter{Kind: access.RequestKind}, func(e audit.Entry) error {
		if e.Action == "refused-access-request" && e.Actor == "alice" {
			n++
		}
		return nil
	})
	if n != 9 {
		t.Errorf("%d refused requests audited, want 9", n)
	}
}

func TestApproveCollectOnceRevoke(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id, err := w.request("alice", ask("readonly", "1h"))
	if err != nil || id != "acc-20261123-001" {
		t.Fatalf("request: %q %v", id, err)
	}
	var pe *access.PolicyError
	if err := w.vote("alice", []string{"sre"}, id, access.Approve); !errors.As(err, &pe) || !strings.Contains(err.Error(), "alice asked for this access and may not approve it") {
		t.Fatalf("self-approval: %v", err)
	}
	if err := w.vote("dana", []string{"deployer"}, id, access.Approve); !errors.As(err, &pe) {
		t.Fatalf("approval without the role: %v", err)
	}
	if _, st := w.get(id); st.State != access.Pending {
		t.Fatalf("after refused votes: %s", st.State)
	}
	if err := w.vote("bob", []string{"sre"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	_, st := w.get(id)
	if st.State != access.Active || st.Handle != "h-"+id || !strings.HasPrefix(st.Sealed, seal.Prefix) || !st.NotAfter.Equal(w.clock.Now().Add(time.Hour)) {
		t.Fatalf("after approval: %+v", st)
	}
	if _, err := w.svc.Credentials(ctx, store.Actor{Name: "bob"}, id); !errors.As(err, &pe) {
		t.Fatalf("the approver collected the credential: %v", err)
	}
	cred, err := w.svc.Credentials(ctx, store.Actor{Name: "alice"}, id)
	if err != nil || cred["token"] != "secret-"+id {
		t.Fatalf("credentials: %v %v", cred, err)
	}
	if _, err := w.svc.Credentials(ctx, store.Actor{Name: "alice"}, id); !errors.As(err, &pe) || !strings.Contains(err.Error(), "it is shown once") {
		t.Fatalf("second collection: %v", err)
	}
	// The secret is nowhere in the store or the audit log.
	o, _ := w.st.Get(ctx, access.RequestKind, id)
	if strings.Contains(string(o.Status), "secret-") {
		t.Fatalf("the credential is stored in the clear: %s", o.Status)
	}
	_ = w.st.Audit().Entries(ctx, store.AuditFilter{}, func(e audit.Entry) error {
		if strings.Contains(e.Reason, "secret-") {
			t.Errorf("audit entry %d holds the credential: %s", e.Seq, e.Reason)
		}
		return nil
	})
	if _, err := w.svc.Revoke(ctx, store.Actor{Name: "alice"}, id, "done early"); err != nil {
		t.Fatal(err)
	}
	if _, st := w.get(id); st.State != access.Revoked || st.RevokePending || w.revoked() != "h-"+id+"\n" {
		t.Fatalf("after revoke: %+v, revoked %q", st, w.revoked())
	}
	if _, err := w.svc.Revoke(ctx, store.Actor{Name: "alice"}, id, "again"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "is revoked already") {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestHighRiskNeedsTwoPeople(t *testing.T) {
	w := newWorld(t)
	id, err := w.request("alice", ask("readwrite", "1h"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.vote("cy", []string{"sre", "tech-lead"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	if _, st := w.get(id); st.State != access.Pending || st.Missing == "" {
		t.Fatalf("one person holding both roles approved a high-risk role: %+v", st)
	}
	if err := w.vote("dee", []string{"tech-lead"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	if _, st := w.get(id); st.State != access.Active || st.Have != "sre cy, tech-lead dee" {
		t.Fatalf("after the second approver: %+v", st)
	}
}

// Access that ran out while airlock was down is revoked when it starts,
// before anything else; a pending request expires after an hour.
func TestExpiryWhileDown(t *testing.T) {
	w := newWorld(t)
	id, _ := w.request("alice", ask("readonly", "30m"))
	if err := w.vote("bob", []string{"sre"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	other, _ := w.request("alice", ask("readonly", "1h"))
	w.clock.Add(2 * time.Hour) // airlock is down meanwhile
	w.restart()
	if _, st := w.get(id); st.State != access.Expired || st.RevokedAt == nil || !strings.Contains(w.revoked(), "h-"+id) {
		t.Fatalf("after the restart: %+v, revoked %q", st, w.revoked())
	}
	if _, st := w.get(other); st.State != access.Expired || st.EndReason != "not approved in time" {
		t.Fatalf("the unapproved request: %+v", st)
	}
}

// A failed revocation is retried with backoff, notified, and never
// forgotten; the access shows active until the broker confirms.
func TestRevocationRetried(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id, _ := w.request("alice", ask("readonly", "10m"))
	if err := w.vote("bob", []string{"sre"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	w.script("FAIL", "")
	w.clock.Add(11 * time.Minute)
	for range 3 {
		if _, err := w.svc.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		w.clock.Add(40 * time.Second)
	}
	_, st := w.get(id)
	if st.State != access.Active || !st.RevokePending || st.RevokeAttempts != 3 || !strings.Contains(st.RevokeError, "the target is down") {
		t.Fatalf("while the broker fails: %+v", st)
	}
	notes, err := w.st.List(ctx, notify.NotificationKind, nil)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, n := range notes {
		var s notify.NotificationSpec
		_ = n.DecodeSpec(&s)
		if s.Event == notify.AccessRevocationFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d revocation-failed notifications, want 1 (the first failure)", failed)
	}
	os.Remove(filepath.Join(w.dir, "FAIL"))
	if _, err := w.svc.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, st := w.get(id); st.State != access.Expired || st.RevokePending {
		t.Fatalf("after the broker recovered: %+v", st)
	}
}

func TestFreezeAndBusinessHoursAndAlerts(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// Outside the team: an alert, and a notification.
	id, err := w.request("eve", ask("readonly", "1h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, st := w.get(id); len(st.Alerts) != 1 || st.Alerts[0] != "eve is not in team orders, which owns orders-db" {
		t.Fatalf("alerts: %q", st.Alerts)
	}
	// Business hours that require an incident: closed on a Monday at 10
	// only if the window says so; here it is open 09-17 on weekdays.
	w.apply(`apiVersion: airlock.dev/v1
kind: Window
metadata: {name: office}
spec: {kind: allow, timeZone: UTC, rrule: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0", duration: 8h}
`)
	w.apply(strings.Replace(strings.NewReplacer("GRANT", filepath.Join(w.dir, "grant"), "REVOKE", filepath.Join(w.dir, "revoke")).Replace(resources), "  maxDuration: 8h\n", "  maxDuration: 8h\n  businessHours: {window: office, requireIncident: true}\n", 1))
	if _, err := w.request("alice", ask("readonly", "1h")); err != nil {
		t.Fatalf("inside business hours: %v", err)
	}
	w.clock.Add(10 * time.Hour) // 20:00
	var pe *access.PolicyError
	if _, err := w.request("alice", ask("readonly", "1h")); !errors.As(err, &pe) || !strings.Contains(err.Error(), "outside business hours (window office)") {
		t.Fatalf("outside business hours: %v", err)
	}
	inc, err := incident.New(w.st).Open(ctx, store.Actor{Name: "alice"}, incident.OpenRequest{Severity: "sev2", Summary: "orders stuck"})
	if err != nil {
		t.Fatal(err)
	}
	a := ask("readonly", "1h")
	a.Incident = inc.Metadata.Name
	if _, err := w.request("alice", a); err != nil {
		t.Fatalf("outside business hours with an incident: %v", err)
	}
	// A freeze needs an incident too.
	w.apply(`apiVersion: airlock.dev/v1
kind: Window
metadata: {name: freeze}
spec: {kind: deny, timeZone: UTC, rrule: "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", duration: 48h, environments: [prod], reason: year-end}
`)
	w.clock.Add(-10 * time.Hour)
	if _, err := w.request("alice", ask("readonly", "1h")); !errors.As(err, &pe) || !strings.Contains(err.Error(), "prod is frozen") {
		t.Fatalf("in a freeze: %v", err)
	}
	if _, err := w.request("alice", a); err != nil {
		t.Fatalf("in a freeze with an incident: %v", err)
	}
}

func TestStandingNeed(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) // a Friday
	var times []time.Time
	for d, days := 0, 0; days < 11; d++ {
		t := now.AddDate(0, 0, -d)
		if t.Weekday() != time.Saturday && t.Weekday() != time.Sunday {
			times = append(times, t, t.Add(-time.Hour)) // twice a day counts once
			days++
		}
	}
	if n := access.StandingNeed(times, now); n != 11 {
		t.Fatalf("StandingNeed = %d, want 11", n)
	}
	if n := access.StandingNeed([]time.Time{now.AddDate(0, 0, -40)}, now); n != 0 {
		t.Fatalf("an old request counts: %d", n)
	}
}

func TestReport(t *testing.T) {
	w := newWorld(t)
	id, _ := w.request("alice", ask("readonly", "1h"))
	if err := w.vote("bob", []string{"sre"}, id, access.Approve); err != nil {
		t.Fatal(err)
	}
	denied, _ := w.request("alice", ask("readonly", "1h"))
	if err := w.vote("bob", []string{"sre"}, denied, access.Deny); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(2 * time.Hour)
	if _, err := w.svc.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := access.BuildReport(context.Background(), w.st, "prod", w.clock.Now().Add(-24*time.Hour), w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Access) != 2 || rep.Access[0].Request != id || rep.Access[0].Approvers[0] != "bob" || rep.Access[0].State != access.Expired || rep.Access[0].From == nil {
		t.Fatalf("access: %+v", rep.Access)
	}
	var whats []string
	for _, e := range rep.Timeline {
		whats = append(whats, e.What)
	}
	if strings.Join(whats, ",") != "access-requested,access-granted,access-requested,access-ended,access-ended" {
		t.Fatalf("timeline: %v", whats)
	}
}

// TestOneProcessIssues: two airlock processes over one database; while one
// calls the broker, the other does not issue the same access again.
func TestOneProcessIssues(t *testing.T) {
	w := newWorld(t)
	w.script("grant", `#!/bin/sh
echo "$AIRLOCK_ACCESS_ID" >> "$(dirname "$0")/granted"
sleep 1
printf '{"credential": {"token": "secret-%s"}, "handle": "h-%s"}' "$AIRLOCK_ACCESS_ID" "$AIRLOCK_ACCESS_ID"
`)
	id, err := w.request("alice", ask("readonly", "1h"))
	if err != nil {
		t.Fatal(err)
	}
	other := access.New(w.st, w.sealer, func(k string) string { return w.env[k] }, w.clock.Now)
	done := make(chan error, 1)
	go func() { done <- w.vote("bob", []string{"sre"}, id, access.Approve) }()
	for { // wait until the first process holds the claim
		if _, st := w.get(id); st.IssuingBy != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 5 {
		if _, err := other.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(w.dir, "granted"))
	if got := strings.Count(string(b), "\n"); got != 1 {
		t.Fatalf("the broker was asked %d times", got)
	}
	if _, st := w.get(id); st.State != access.Active || st.IssuingBy != "" {
		t.Fatalf("after issuing: %+v", st)
	}
}
