package window_test

import (
	"context"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/window"
)

// world has a prod stage gated only by the deployment windows, and a
// freeze around the clock's start (Friday 2026-11-27 11:00 in Stockholm).
var world = promotiontest.DevProd("- {type: window}") + `---
apiVersion: airlock.dev/v1
kind: Window
metadata: {name: black-friday}
spec:
  kind: deny
  timeZone: Europe/Stockholm
  rrule: FREQ=MONTHLY;BYMONTH=11;BYDAY=-1FR;BYHOUR=0;BYMINUTE=0
  duration: 72h
  environments: [prod]
  reason: Black Friday weekend
`

func newWorld(t *testing.T) (*promotion.Service, store.Store, *promotiontest.Clock) {
	t.Helper()
	w := promotiontest.New(t, world)
	return w.Promotions, w.Store, w.Clock
}

func promote(t *testing.T, p *promotion.Service, to string, em *promotion.Emergency) promotion.Status {
	t.Helper()
	obj, err := p.Request(context.Background(), store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: to, Emergency: em})
	if err != nil {
		t.Fatalf("promote to %s: %v", to, err)
	}
	var st promotion.Status
	if err := obj.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPromotionWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	p, _, c := newWorld(t)
	if st := promote(t, p, "dev", nil); st.Phase != promotion.Succeeded {
		t.Fatalf("dev is outside the freeze's scope: %+v", st)
	}
	st := promote(t, p, "prod", nil)
	if st.Phase != promotion.Blocked || len(st.Gates) != 2 || st.Gates[0].Status != "fail" ||
		!strings.Contains(strings.Join(st.Gates[0].Reasons, " "), "closed by deny window black-friday (Black Friday weekend) until 2026-11-30T00:00:00+01:00") {
		t.Fatalf("prod during the freeze: %+v", st)
	}
	c.Set(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC))
	if st := promote(t, p, "prod", nil); st.Phase != promotion.Succeeded {
		t.Fatalf("prod after the freeze: %+v", st)
	}
}

func TestEmergencyPassesTheFreeze(t *testing.T) {
	t.Parallel()
	p, st, _ := newWorld(t)
	promote(t, p, "dev", nil)
	inc, err := incident.New(st).Open(context.Background(), store.Actor{Name: "oncall"}, incident.OpenRequest{Severity: "sev1", Summary: "payments down"})
	if err != nil {
		t.Fatal(err)
	}
	if got := promote(t, p, "prod", &promotion.Emergency{Incident: inc.Metadata.Name, Reason: "payment outage hotfix"}); got.Phase != promotion.Pending {
		t.Fatalf("emergency before its approval: %+v", got)
	}
	got := promotiontest.ApproveEmergency(t, p, promotion.Name("shop-1.4.0", "prod"))
	if got.Phase != promotion.Succeeded || len(got.Gates) != 3 || got.Gates[0].Status != "waived" || got.Review == "" {
		t.Fatalf("emergency during the freeze: %+v", got)
	}
	objs, err := st.List(context.Background(), promotion.ReviewKind, nil)
	if err != nil || len(objs) != 1 {
		t.Fatalf("reviews: %d %v", len(objs), err)
	}
	var review promotion.ReviewSpec
	if err := objs[0].DecodeSpec(&review); err != nil {
		t.Fatal(err)
	}
	if strings.Join(review.WaivedGates, ",") != "window" || !review.PassedFreeze {
		t.Fatalf("the review does not record the freeze was passed: %+v", review)
	}
}

func TestApplyRejectsABadWindow(t *testing.T) {
	t.Parallel()
	doc := `apiVersion: airlock.dev/v1
kind: Window
metadata: {name: bad}
spec:
  kind: allow
  timeZone: Europe/Stockholm
  rrule: FREQ=HOURLY
  duration: 8h
`
	_, err := server.NewScheme().Decode("bad.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "spec.rrule") || !strings.Contains(err.Error(), "HOURLY") {
		t.Fatalf("bad rrule: %v", err)
	}
}

func TestExampleWindows(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../examples/windows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := server.NewScheme().Decode("examples/windows.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	var ws []window.Window
	for _, o := range objs {
		w := window.Window{Name: o.Metadata.Name}
		if o.Kind != window.KindName {
			t.Fatalf("unexpected %s", o.Ref())
		}
		if err := o.DecodeSpec(&w.Spec); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for _, tt := range []struct {
		at, env string
		open    bool
		next    string
	}{
		{at: "2026-11-26T10:00:00+01:00", env: "prod", open: true},
		{at: "2026-11-27T10:00:00+01:00", env: "prod", open: false, next: "2026-11-30T09:00:00+01:00"}, // Friday
		{at: "2026-12-21T10:00:00+01:00", env: "prod", open: false, next: "2027-01-04T09:00:00+01:00"}, // frozen; 2 January is a Saturday
		{at: "2026-12-21T10:00:00+01:00", env: "staging", open: true},
		{at: "2026-07-01T15:59:00+02:00", env: "prod", open: true},
	} {
		open, why, next, err := window.Open(ws, "shop", tt.env, at(tt.at))
		if err != nil || open != tt.open || (tt.next != "" && !next.Equal(at(tt.next))) {
			t.Errorf("%s in %s: open %v (%s), next %s, %v; want %v, next %s", tt.at, tt.env, open, why, next, err, tt.open, tt.next)
		}
	}
}

func TestOpenPromotionsAreReevaluatedWhenTheWindowOpens(t *testing.T) {
	t.Parallel()
	p, st, c := newWorld(t)
	promote(t, p, "dev", nil)
	if s := promote(t, p, "prod", nil); s.Phase != promotion.Blocked {
		t.Fatalf("prod during the freeze: %+v", s)
	}
	actor := store.Actor{Name: "system:promotions"}
	if n, err := p.ReevaluateOpen(context.Background(), actor); err != nil || n != 1 {
		t.Fatalf("ReevaluateOpen during the freeze: %d, %v", n, err)
	}
	before, _, _ := st.Audit().Head(context.Background())
	if _, err := p.ReevaluateOpen(context.Background(), actor); err != nil {
		t.Fatal(err)
	}
	if after, _, _ := st.Audit().Head(context.Background()); after != before {
		t.Fatal("re-evaluating an unchanged promotion wrote to the store")
	}
	c.Set(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC))
	if _, err := p.ReevaluateOpen(context.Background(), actor); err != nil {
		t.Fatal(err)
	}
	obj, err := st.Get(context.Background(), promotion.Kind, promotion.Name("shop-1.4.0", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	var s promotion.Status
	obj.DecodeStatus(&s)
	if s.Phase != promotion.Succeeded {
		t.Fatalf("after the freeze, without asking again: %+v", s)
	}
}
