package promotion_test

import (
	"context"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
)

const deployWorld = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, runtime: local, isolation: {level: labels, network: dev-net, credentials: dev-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  data: production
  runtime: local
  isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: "one machine: the local runtime"}}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  stages:
  - environment: dev
  - environment: prod
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec:
  owners: [team-shop]
  pipeline: default
  environments:
    prod: {replicas: 2, listen: "127.0.0.1:18080", strategy: {type: blueGreen}}
`

// finish ends a rollout as the reconciler would, and hands its outcome to
// the promotion service.
func finish(t *testing.T, w *promotiontest.World, name string, phase rollout.Phase, msg string) {
	t.Helper()
	ctx := context.Background()
	err := w.Store.Write(ctx, store.Actor{Name: "system:rollouts"}, func(tx store.Tx) error {
		o, err := tx.Get(ctx, rollout.Kind, name)
		if err != nil {
			return err
		}
		spec, st, _ := rollout.Decode(o)
		st.Phase, st.Message = phase, msg
		o.Metadata.Labels[rollout.PhaseLabel] = string(phase)
		o.SetStatus(st)
		o.Metadata.Revision = 0
		if _, err := tx.Update(ctx, o); err != nil {
			return err
		}
		return w.Promotions.RolloutFinished(ctx, tx, name, spec, st)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPromotionTakesTheRolloutsOutcome(t *testing.T) {
	ctx := context.Background()
	w := promotiontest.New(t, deployWorld)
	p := w.Promotions
	for _, to := range []string{"dev", "prod"} {
		if _, err := p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	// dev has no settings for shop: no rollout, admitted at once.
	if st := phase(t, w.Store, "shop-1.4.0.to.dev"); st.Phase != promotion.Succeeded || st.Rollout != "" {
		t.Fatalf("dev: %+v", st)
	}
	st := phase(t, w.Store, "shop-1.4.0.to.prod")
	if st.Phase != promotion.Deploying || st.Rollout != "shop.prod.1" || !strings.Contains(st.Message, "rollout shop.prod.1 is deploying it") {
		t.Fatalf("prod: %+v", st)
	}
	o, err := w.Store.Get(ctx, rollout.Kind, st.Rollout)
	if err != nil {
		t.Fatal(err)
	}
	spec, _, _ := rollout.Decode(o)
	if spec.Candidate.Digest != promotiontest.Digest || spec.Replicas != 2 || spec.Strategy.Type != "blueGreen" || spec.Runtime.Listen != "127.0.0.1:18080" || spec.Stable != nil || spec.Promotion != "shop-1.4.0.to.prod" {
		t.Fatalf("rollout spec: %+v", spec)
	}
	rel, _ := w.Store.Get(ctx, "Release", "shop-1.4.0")
	var rs release.Status
	rel.DecodeStatus(&rs)
	if _, ok := rs.Environments["prod"]; ok {
		t.Fatal("the release was admitted to prod before its rollout succeeded")
	}
	// Asking again while it deploys changes nothing.
	if _, err := p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: "prod"}); err != nil {
		t.Fatal(err)
	}

	// Another release waits while the rollout runs.
	cat := catalog.New(w.Store, server.NewScheme())
	if _, err := cat.CreateRelease(ctx, store.Actor{Name: "ci"}, catalog.ReleaseRequest{App: "shop", Version: "1.5.0", Artifact: release.Artifact{Digest: "sha256:" + strings.Repeat("2", 64)}, Commit: "9f2c1e7"}); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"dev", "prod"} {
		if _, err := p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.5.0", To: to}); err != nil {
			t.Fatal(err)
		}
	}
	if st := phase(t, w.Store, "shop-1.5.0.to.prod"); st.Phase != promotion.Pending || !strings.Contains(st.Message, "waiting to deploy: rollout shop.prod.1 of shop 1.4.0 in prod is still") {
		t.Fatalf("a second release during a rollout: %+v", st)
	}

	finish(t, w, "shop.prod.1", rollout.Succeeded, "switched")
	if st := phase(t, w.Store, "shop-1.4.0.to.prod"); st.Phase != promotion.Succeeded || st.CompletedAt == nil {
		t.Fatalf("after the rollout: %+v", st)
	}
	rel, _ = w.Store.Get(ctx, "Release", "shop-1.4.0")
	rel.DecodeStatus(&rs)
	if rs.Environments["prod"].Promotion != "shop-1.4.0.to.prod" {
		t.Fatalf("admission: %+v", rs.Environments)
	}

	// The waiting release deploys on its next evaluation, with 1.4.0 as stable.
	if _, err := p.ReevaluateOpen(ctx, store.Actor{Name: "system:promotions"}); err != nil {
		t.Fatal(err)
	}
	st = phase(t, w.Store, "shop-1.5.0.to.prod")
	if st.Phase != promotion.Deploying || st.Rollout != "shop.prod.2" {
		t.Fatalf("after the first rollout: %+v", st)
	}
	finish(t, w, "shop.prod.2", rollout.Failed, "0 of 2 instances healthy")
	if st := phase(t, w.Store, "shop-1.5.0.to.prod"); st.Phase != promotion.Failed || !strings.Contains(st.Message, "rollout shop.prod.2 ended Failed: 0 of 2 instances healthy") {
		t.Fatalf("after a failed rollout: %+v", st)
	}
	// Asking again deploys again.
	if _, err := p.Request(ctx, store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.5.0", To: "prod"}); err != nil {
		t.Fatal(err)
	}
	if st := phase(t, w.Store, "shop-1.5.0.to.prod"); st.Phase != promotion.Deploying || st.Rollout != "shop.prod.3" {
		t.Fatalf("retry: %+v", st)
	}
}
