package rollout_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
)

func TestMarkers(t *testing.T) {
	t.Parallel()
	stable := &rollout.Version{Version: "1.3.0"}
	spec := rollout.Spec{App: "shop", Environment: "prod", Candidate: rollout.Version{Version: "1.4.0"}, Stable: stable,
		Strategy: application.Strategy{Type: application.Canary}}
	first := spec
	first.Stable = nil
	st := func(p rollout.Phase, step, weight int) rollout.Status {
		return rollout.Status{Phase: p, Step: step, Weight: weight}
	}
	tests := []struct {
		name       string
		spec       rollout.Spec
		prev, next rollout.Status
		want       []string // event:phase:weight
	}{
		{"first plan starts", spec, rollout.Status{}, st(rollout.Progressing, 0, 0), []string{"rollout.started:Progressing:0"}},
		{"first deploy healthy at once", first, rollout.Status{}, st(rollout.Succeeded, 1, 100), []string{"rollout.started:Succeeded:100", "rollout.finished:Succeeded:100"}},
		{"traffic moves", spec, st(rollout.Progressing, 0, 0), st(rollout.Progressing, 0, 10), []string{"rollout.step:Progressing:10"}},
		{"next step, traffic not moved yet", spec, st(rollout.Progressing, 0, 10), st(rollout.Progressing, 1, 10), nil},
		{"soak goes on", spec, st(rollout.Progressing, 1, 50), st(rollout.Progressing, 1, 50), nil},
		{"paused", spec, st(rollout.Progressing, 1, 50), st(rollout.Paused, 1, 50), nil},
		{"last step succeeds", spec, st(rollout.Progressing, 2, 50), st(rollout.Succeeded, 2, 100), []string{"rollout.finished:Succeeded:100"}},
		{"fails", spec, st(rollout.Progressing, 0, 10), st(rollout.Failed, 0, 10), []string{"rollout.finished:Failed:10"}},
		{"aborted while paused", spec, st(rollout.Paused, 1, 50), st(rollout.Aborted, 1, 50), []string{"rollout.finished:Aborted:50"}},
		{"rolled back in the window", spec, st(rollout.Succeeded, 1, 100), st(rollout.RolledBack, 1, 0), []string{"rollout.finished:RolledBack:0"}},
		{"a finished rollout settles", spec, st(rollout.Failed, 0, 10), st(rollout.Failed, 0, 0), nil},
	}
	for _, tc := range tests {
		var got []string
		for _, ev := range rollout.Markers("shop.prod.2", tc.spec, tc.prev, tc.next) {
			got = append(got, ev.Type+":"+ev.Data["phase"]+":"+ev.Data["weight"])
			if ev.Data["app"] != "shop" || ev.Data["environment"] != "prod" || ev.Data["version"] != "1.4.0" || ev.Data["rollout"] != "shop.prod.2" || ev.Data["step"] == "" {
				t.Errorf("%s: %s data %v lacks app, environment, version, rollout or step", tc.name, ev.Type, ev.Data)
			}
			if !strings.HasPrefix(ev.Subject, "shop 1.4.0 in prod: ") {
				t.Errorf("%s: subject %q", tc.name, ev.Subject)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: markers %q, want %q", tc.name, got, tc.want)
		}
	}
	if ev := rollout.Markers("x", spec, st(rollout.Paused, 1, 50), st(rollout.RolledBack, 1, 50))[0]; ev.Subject != "shop 1.4.0 in prod: rollout rolled back" {
		t.Errorf("rolled back subject: %q", ev.Subject)
	}
}

// TestRolloutEnqueuesMarkers runs rollouts on the local runtime and checks
// the Notification objects queued for a sink that asks for the markers.
func TestRolloutEnqueuesMarkers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	w := newWorld(t)
	ctx := context.Background()
	sink := &resource.Object{APIVersion: resource.APIVersion, Kind: notify.SinkKind, Metadata: resource.Metadata{Name: "timeline"}}
	if err := sink.SetSpec(notify.SinkSpec{Type: notify.Webhook, URL: "https://hooks.example.com/timeline",
		Events: []string{notify.RolloutStarted, notify.RolloutStep, notify.RolloutFinished}}); err != nil {
		t.Fatal(err)
	}
	if err := w.st.Write(ctx, store.Actor{Name: "admin"}, func(tx store.Tx) error { _, err := tx.Create(ctx, sink); return err }); err != nil {
		t.Fatal(err)
	}

	first := w.deploy("1.0.0", application.Strategy{Type: application.BlueGreen})
	w.wait(first, rollout.Succeeded)
	second := w.deploy("1.1.0", canary(application.CanaryStep{Weight: 50, Pause: "200ms"}, application.CanaryStep{Weight: 100}))
	w.wait(second, rollout.Succeeded)
	bad := w.deploy("bad-1.2.0", canary(application.CanaryStep{Weight: 100}))
	w.wait(bad, rollout.Failed)

	objs, err := w.st.List(ctx, notify.NotificationKind, nil)
	if err != nil {
		t.Fatal(err)
	}
	type queued struct {
		at  time.Time
		rev int64
		s   string
	}
	byRollout := map[string][]queued{}
	for _, o := range objs {
		var n notify.NotificationSpec
		if err := o.DecodeSpec(&n); err != nil {
			t.Fatal(err)
		}
		if n.Sink != "timeline" || o.Metadata.Labels["state"] != string(notify.StatePending) {
			t.Errorf("notification %s: sink %s state %s", o.Metadata.Name, n.Sink, o.Metadata.Labels["state"])
		}
		byRollout[n.Data["rollout"]] = append(byRollout[n.Data["rollout"]], queued{o.Metadata.CreatedAt, o.Metadata.Revision, n.Event + ":" + n.Data["phase"] + ":" + n.Data["weight"] + ":" + n.Data["version"]})
	}
	want := map[string][]string{
		first:  {"rollout.started:Progressing:100:1.0.0", "rollout.finished:Succeeded:100:1.0.0"},
		second: {"rollout.started:Progressing:0:1.1.0", "rollout.step:Progressing:50:1.1.0", "rollout.finished:Succeeded:100:1.1.0"},
		bad:    {"rollout.started:Progressing:0:bad-1.2.0", "rollout.finished:Failed:0:bad-1.2.0"},
	}
	for name, w := range want {
		q := byRollout[name]
		slices.SortFunc(q, func(a, b queued) int { return int(a.rev - b.rev) })
		var got []string
		for _, x := range q {
			got = append(got, x.s)
		}
		if !slices.Equal(got, w) {
			t.Errorf("rollout %s queued %q, want %q", name, got, w)
		}
	}
	if len(byRollout) != len(want) {
		t.Errorf("markers for %d rollouts, want %d: %v", len(byRollout), len(want), byRollout)
	}
}
