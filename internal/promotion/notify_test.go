package promotion_test

import (
	"context"
	"testing"

	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/notify"
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
