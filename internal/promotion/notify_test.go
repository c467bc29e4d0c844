package promotion_test

import (
	"context"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

const sinks = `apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: ops}
spec: {type: webhook, url: "https://hooks.example.com/airlock", events: [promotion.blocked]}
---
apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: chat}
spec: {type: slack, url: "https://hooks.slack.example/x", events: [approval.requested]}
`

func notifications(t *testing.T, st store.Store) []notify.NotificationSpec {
	t.Helper()
	objs, err := st.List(context.Background(), notify.NotificationKind, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []notify.NotificationSpec
	for _, o := range objs {
		var s notify.NotificationSpec
		if err := o.DecodeSpec(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestBlockedPromotionNotifiesOnce(t *testing.T) {
	e := newEnv(t)
	objs, err := server.NewScheme().Decode("sinks.yaml", []byte(sinks))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.New(e.st, server.NewScheme()).Apply(context.Background(), store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.promote("dev", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.promote("staging", nil); err != nil {
		t.Fatal(err)
	}
	if n := notifications(t, e.st); len(n) != 0 {
		t.Fatalf("pending on evidence notified: %+v", n)
	}
	e.add(evidence.Tests, "", junitFail)
	// More failing evidence re-evaluates the blocked promotion: still
	// blocked, so no second notification.
	e.add(evidence.Coverage, "", coverLow)
	n := notifications(t, e.st)
	if len(n) != 1 || n[0].Event != notify.PromotionBlocked || n[0].Sink != "ops" || n[0].Data["environment"] != "staging" {
		t.Fatalf("want exactly one promotion.blocked for sink ops, got %+v", n)
	}
}

const allEvents = `apiVersion: airlock.dev/v1
kind: Sink
metadata: {name: all}
spec: {type: webhook, url: "https://hooks.example.com/all"}
`

func (e *env) apply(doc string) {
	e.t.Helper()
	scheme := server.NewScheme()
	objs, err := scheme.Decode("extra.yaml", []byte(doc))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := catalog.New(e.st, scheme).Apply(context.Background(), store.Actor{Name: "admin"}, objs, false); err != nil {
		e.t.Fatal(err)
	}
}

func events(t *testing.T, st store.Store) string {
	t.Helper()
	var out []string
	for _, n := range notifications(t, st) {
		out = append(out, n.Event)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func TestEmergencyAndOverdueReviewNotify(t *testing.T) {
	e := newEnv(t)
	e.apply(allEvents)
	e.promote("dev", nil)
	e.add(evidence.Tests, "", junitPass)
	e.add(evidence.Coverage, "", coverGood)
	e.promote("staging", nil)
	e.add(evidence.SAST, "", sarifHigh)
	if _, st, _ := e.promote("prod", &promotion.Emergency{Incident: e.openIncident(), Reason: "hotfix"}); st.Phase != promotion.Blocked {
		t.Fatalf("emergency with a high finding: %+v", st)
	}
	e.add(evidence.SAST, "", sarifClean)
	promotiontest.ApproveEmergency(t, e.promos, promotion.Name("shop-1.4.0", "prod"))
	if got := events(t, e.st); got != "approval.requested,promotion.blocked,promotion.emergency,review.due" {
		t.Fatalf("events after the emergency: %s", got)
	}
	e.clock.Add(25 * time.Hour)
	for range 2 {
		if _, err := e.promos.FlagOverdue(context.Background(), store.Actor{Name: "system:reviews"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := events(t, e.st); got != "approval.requested,promotion.blocked,promotion.emergency,review.due,review.overdue" {
		t.Fatalf("events after the deadline: %s", got)
	}
}

func TestApprovalRequestedNotifiesOnce(t *testing.T) {
	ctx := context.Background()
	w := promotiontest.New(t, approvalWorld+"---\n"+sinks)
	p, st := w.Promotions, w.Store
	for _, to := range []string{"dev", "prod", "prod"} {
		if _, err := p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	name := promotion.Name("shop-1.4.0", "prod")
	// One approval of two: still waiting, no second message.
	if _, err := p.Vote(ctx, store.Actor{Name: "alice"}, promotion.Vote{Promotion: name, Decision: approval.Approve, Reason: "ok", Roles: []string{"sre"}}); err != nil {
		t.Fatal(err)
	}
	n := notifications(t, st)
	if len(n) != 1 || n[0].Event != notify.ApprovalRequested || n[0].Sink != "chat" || n[0].Data["promotion"] != name {
		t.Fatalf("want one approval.requested for sink chat, got %+v", n)
	}
}
