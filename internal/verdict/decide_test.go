package verdict_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

func withSignals(s verdict.Spec, sig ...verdict.Signal) verdict.Spec {
	s.Signals = sig
	return s
}

func auditOf(t *testing.T, st store.Store, name string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := st.Audit().Entries(context.Background(), store.AuditFilter{Kind: verdict.Kind}, func(e audit.Entry) error {
		if e.Name == name {
			out = append(out, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := openStore(t)
	record(t, st, "v-accept", spec("shop", "prod", verdict.Fail))
	record(t, st, "v-override", spec("shop", "prod", verdict.Fail))
	alice := store.Actor{Name: "alice", Reason: "verdict decision"}

	var ie *verdict.InvalidError
	var pe *verdict.PolicyError
	refusals := []struct {
		name string
		who  store.Actor
		req  verdict.DecideRequest
		as   any
		want string
	}{
		{"no reason", alice, verdict.DecideRequest{Name: "v-accept", Decision: verdict.AcceptDecision, Reason: "  "}, &ie, "reason is required"},
		{"override without an outcome", alice, verdict.DecideRequest{Name: "v-override", Decision: verdict.OverrideDecision, Reason: "noise"}, &ie, "names the outcome"},
		{"accept with an outcome", alice, verdict.DecideRequest{Name: "v-accept", Decision: verdict.AcceptDecision, Reason: "ok", Outcome: verdict.Pass}, &ie, "override it"},
		{"the judge decides", store.Actor{Name: "analysis/error-rate"}, verdict.DecideRequest{Name: "v-accept", Decision: verdict.AcceptDecision, Reason: "mine"}, &pe, "may not accept"},
		{"override to the same outcome", alice, verdict.DecideRequest{Name: "v-override", Decision: verdict.OverrideDecision, Reason: "agree", Outcome: verdict.Fail}, &pe, "accept it"},
	}
	for _, tc := range refusals {
		_, err := verdict.Decide(ctx, st, tc.who, tc.req)
		if err == nil || !errors.As(err, tc.as) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a %T saying %q", tc.name, err, tc.as, tc.want)
		}
	}
	if _, err := verdict.Decide(ctx, st, alice, verdict.DecideRequest{Name: "absent", Decision: verdict.AcceptDecision, Reason: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deciding on an absent verdict: %v", err)
	}

	o, err := verdict.Decide(ctx, st, alice, verdict.DecideRequest{Name: "v-accept", Decision: verdict.AcceptDecision, Reason: "error spike is real"})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := verdict.Decode(o)
	if v.Status.Accepted == nil || v.Status.Accepted.By != "alice" || v.Status.Accepted.Reason != "error spike is real" || v.Effective() != verdict.Fail {
		t.Fatalf("accepted: %+v", v.Status)
	}
	o, err = verdict.Decide(ctx, st, store.Actor{Name: "bob"}, verdict.DecideRequest{Name: "v-override", Decision: verdict.OverrideDecision, Reason: "synthetic traffic", Outcome: verdict.Pass})
	if err != nil {
		t.Fatal(err)
	}
	v, _ = verdict.Decode(o)
	if v.Effective() != verdict.Pass || o.Metadata.Labels[verdict.OutcomeLabel] != "pass" || v.Status.Override.By != "bob" {
		t.Fatalf("overridden: %+v labels %v", v.Status, o.Metadata.Labels)
	}
	// A verdict takes one decision.
	for _, name := range []string{"v-accept", "v-override"} {
		_, err := verdict.Decide(ctx, st, store.Actor{Name: "carol"}, verdict.DecideRequest{Name: name, Decision: verdict.OverrideDecision, Reason: "again", Outcome: verdict.Inconclusive})
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "already") {
			t.Errorf("second decision on %s: %v", name, err)
		}
	}

	actions := func(name string) string {
		var out []string
		for _, e := range auditOf(t, st, name) {
			out = append(out, e.Actor+":"+e.Action)
		}
		return strings.Join(out, ",")
	}
	if got, want := actions("v-accept"), "system:analysis:create,alice:refused-accept,alice:refused-accept,analysis/error-rate:refused-accept,alice:update,carol:refused-override"; got != want {
		t.Errorf("audit of v-accept:\n got %s\nwant %s", got, want)
	}
	if got, want := actions("v-override"), "system:analysis:create,alice:refused-override,alice:refused-override,bob:update,carol:refused-override"; got != want {
		t.Errorf("audit of v-override:\n got %s\nwant %s", got, want)
	}
}

func TestOverrideCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := openStore(t)
	errRate := func(o verdict.Outcome) verdict.Signal { return verdict.Signal{Name: "error-rate", Outcome: o} }
	latency := func(o verdict.Outcome) verdict.Signal { return verdict.Signal{Name: "latency-p99", Outcome: o} }
	record(t, st, "v1", withSignals(spec("shop", "prod", verdict.Fail), errRate(verdict.Fail), latency(verdict.Pass)))
	record(t, st, "v2", withSignals(spec("shop", "prod", verdict.Fail), errRate(verdict.Fail), latency(verdict.Pass)))
	record(t, st, "v3", withSignals(spec("shop", "prod", verdict.Pass), errRate(verdict.Pass), latency(verdict.Pass)))
	record(t, st, "v4", withSignals(spec("cart", "staging", verdict.Fail), errRate(verdict.Pass), latency(verdict.Fail)))
	record(t, st, "v5", spec("shop", "prod", verdict.Fail)) // no signals: counted under its judge
	bob := store.Actor{Name: "bob"}
	// v1's error-rate alarm was false: the person disagreed with
	// error-rate, not with latency, which said pass too.
	for _, name := range []string{"v1", "v5"} {
		if _, err := verdict.Decide(ctx, st, bob, verdict.DecideRequest{Name: name, Decision: verdict.OverrideDecision, Reason: "load test traffic", Outcome: verdict.Pass}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := verdict.Decide(ctx, st, bob, verdict.DecideRequest{Name: "v2", Decision: verdict.AcceptDecision, Reason: "real"}); err != nil {
		t.Fatal(err)
	}
	got, err := verdict.OverrideCounts(ctx, st, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []verdict.SignalCount{
		{Signal: "analysis/error-rate", Verdicts: 1, Overridden: 1, Rate: 1},
		{Signal: "error-rate", Verdicts: 4, Overridden: 1, Rate: 0.25},
		{Signal: "latency-p99", Verdicts: 4},
	}
	if len(got) != len(want) {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("counts[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	got, err = verdict.OverrideCounts(ctx, st, "cart", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Verdicts != 1 || got[0].Overridden != 0 {
		t.Errorf("counts for cart in staging: %+v", got)
	}
}

func TestValidateSignals(t *testing.T) {
	t.Parallel()
	base := spec("shop", "prod", verdict.Fail)
	tests := []struct {
		name string
		sigs []verdict.Signal
		path string
	}{
		{"valid", []verdict.Signal{{Name: "error-rate", Outcome: verdict.Fail, Detail: "7.9% vs 1.1%"}}, ""},
		{"no name", []verdict.Signal{{Outcome: verdict.Fail}}, "spec.signals[0].name"},
		{"twice", []verdict.Signal{{Name: "a", Outcome: verdict.Pass}, {Name: "a", Outcome: verdict.Fail}}, "spec.signals[1].name"},
		{"bad outcome", []verdict.Signal{{Name: "a", Outcome: "meh"}}, "spec.signals[0].outcome"},
	}
	for _, tc := range tests {
		err := verdict.Validate(withSignals(base, tc.sigs...))
		var pe *resource.PathError
		switch {
		case tc.path == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.path != "" && (!errors.As(err, &pe) || !strings.Contains(err.Error(), tc.path)):
			t.Errorf("%s: %v, want an error at %s", tc.name, err, tc.path)
		}
	}
}

func TestRecordQueuesTheMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := openStore(t)
	sink := &resource.Object{APIVersion: resource.APIVersion, Kind: notify.SinkKind, Metadata: resource.Metadata{Name: "timeline"}}
	if err := sink.SetSpec(notify.SinkSpec{Type: notify.Grafana, URL: "https://grafana.example.com"}); err != nil {
		t.Fatal(err)
	}
	s := spec("shop", "prod", verdict.Fail)
	s.Version = "1.4.0"
	err := st.Write(ctx, store.Actor{Name: "system:analysis"}, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, sink); err != nil {
			return err
		}
		_, err := verdict.Record(ctx, tx, "shop-prod-1", s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, notify.NotificationKind, nil)
	if err != nil || len(objs) != 1 {
		t.Fatalf("%d notifications (%v), want the verdict.recorded marker", len(objs), err)
	}
	var n notify.NotificationSpec
	if err := objs[0].DecodeSpec(&n); err != nil {
		t.Fatal(err)
	}
	if n.Event != notify.VerdictRecorded || n.Data["verdict"] != "shop-prod-1" || n.Data["version"] != "1.4.0" || n.Data["phase"] != "fail" || n.Subject != "shop 1.4.0 in prod: verdict fail" {
		t.Fatalf("marker %+v", n)
	}
	if _, err := st.Get(ctx, verdict.Kind, "shop-prod-1"); err != nil {
		t.Fatal(err)
	}
}
