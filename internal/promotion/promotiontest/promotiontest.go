// Package promotiontest builds a real airlock world for promotion tests: a
// SQLite store in a temporary directory with a settable clock, the declared
// objects of a YAML document applied through the catalog, and release
// shop 1.4.0 registered by "ci".
package promotiontest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// Digest is the artifact digest of the release World registers.
const Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// Start is the clock's time when a World is made.
var Start = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// World is one test's airlock.
type World struct {
	Store      store.Store
	Clock      *Clock
	Promotions *promotion.Service
	Ingest     *ingest.Service
}

// New applies yaml (which must declare application shop) to a fresh store
// and registers release shop 1.4.0 with artifact Digest, created by "ci".
func New(t testing.TB, yaml string) *World {
	t.Helper()
	ctx := context.Background()
	c := &Clock{now: Start}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	scheme := server.NewScheme()
	objs, err := scheme.Decode("world.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(st, scheme)
	if _, err := cat.Apply(ctx, store.Actor{Name: "admin"}, objs, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateRelease(ctx, store.Actor{Name: "ci"}, catalog.ReleaseRequest{
		App: "shop", Version: "1.4.0", Artifact: release.Artifact{Digest: Digest}, Commit: "9f2c1e7",
	}); err != nil {
		t.Fatal(err)
	}
	p := promotion.New(st)
	return &World{Store: st, Clock: c, Promotions: p, Ingest: ingest.New(st, p.Reevaluate)}
}

// ApproveEmergency gives an emergency promotion its one approval, by
// "erica", an emergency approver, and returns the promotion's status after.
func ApproveEmergency(t testing.TB, p *promotion.Service, promo string) promotion.Status {
	t.Helper()
	obj, err := p.Vote(context.Background(), store.Actor{Name: "erica"}, promotion.Vote{
		Promotion: promo, Decision: approval.Approve, Reason: "agreed on the incident call", Roles: []string{approval.EmergencyRole},
	})
	if err != nil {
		t.Fatalf("emergency approval of %s: %v", promo, err)
	}
	var st promotion.Status
	if err := obj.DecodeStatus(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// DevProd is a world for New: environments dev and prod (prod isolated by
// labels under a waiver), pipeline default from dev to prod with gates (the
// YAML lines of prod's gate list, each "- {...}"), and application shop.
func DevProd(gates ...string) string {
	var g string
	if len(gates) > 0 {
		g = "    gates:\n"
		for _, line := range gates {
			g += "    " + line + "\n"
		}
	}
	return `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, isolation: {level: labels, network: dev-net, credentials: dev-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  data: production
  isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: "one machine: the local runtime"}}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  stages:
  - environment: dev
  - environment: prod
` + g + `---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec: {owners: [team-shop], pipeline: default}
`
}
