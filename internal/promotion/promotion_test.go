package promotion_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/airlock-dev/airlock/internal/promotion/promotiontest"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

const world = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, isolation: {level: labels, network: dev-net, credentials: dev-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, isolation: {level: labels, network: staging-net, credentials: staging-vault}}
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
  - environment: staging
    gates:
    - {type: tests, suite: unit}
    - {type: coverage, minPercent: 80}
  - environment: prod
    gates:
    - {type: tests, suite: unit, requireTrusted: false}
    - {type: coverage, minPercent: 80, requireTrusted: false}
    - {type: sast, maxSeverity: medium, requireTrusted: false}
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec: {owners: [team-shop], pipeline: default}
`

const (
	digest     = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	junitPass  = `<testsuites><testsuite name="shop" tests="2" failures="0"><testcase name="TestA" classname="shop"/><testcase name="TestB" classname="shop"/></testsuite></testsuites>`
	junitFail  = `<testsuites><testsuite name="shop" tests="2" failures="1"><testcase name="TestA" classname="shop"/><testcase name="TestB" classname="shop"><failure message="boom">boom</failure></testcase></testsuite></testsuites>`
	coverGood  = "mode: set\nshop/a.go:1.1,2.2 9 1\nshop/a.go:3.1,4.2 1 0\n"
	coverLow   = "mode: set\nshop/a.go:1.1,2.2 5 1\nshop/a.go:3.1,4.2 5 0\n"
	sarifHigh  = `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"gosec","rules":[{"id":"G401","properties":{"security-severity":"7.5"}}]}},"results":[{"ruleId":"G401","level":"error","message":{"text":"weak crypto"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.go"},"region":{"startLine":3}}}]}]}]}`
	sarifClean = `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"gosec","rules":[]}},"results":[]}]}`
)

type env struct {
	t      *testing.T
	st     store.Store
	clock  *promotiontest.Clock
	promos *promotion.Service
	ingest *ingest.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	w := promotiontest.New(t, world)
	return &env{t: t, st: w.Store, clock: w.Clock, promos: w.Promotions, ingest: w.Ingest}
}

func (e *env) promote(to string, em *promotion.Emergency) (*resource.Object, promotion.Status, error) {
	e.t.Helper()
	obj, err := e.promos.Request(context.Background(), store.Actor{Name: "deployer"}, promotion.Request{App: "shop", Version: "1.4.0", To: to, Emergency: em})
	if err != nil {
		return nil, promotion.Status{}, err
	}
	var st promotion.Status
	if err := obj.DecodeStatus(&st); err != nil {
		e.t.Fatal(err)
	}
	return obj, st, nil
}

func (e *env) add(typ evidence.Type, name, body string) {
	e.t.Helper()
	if _, err := e.ingest.Add(context.Background(), store.Actor{Name: "ci"}, ingest.Request{App: "shop", Version: "1.4.0", Type: typ, Name: name, Body: bytes.NewReader([]byte(body)), Size: int64(len([]byte(body)))}); err != nil {
		e.t.Fatalf("add %s: %v", typ, err)
	}
}

func (e *env) status(name string) promotion.Status {
	e.t.Helper()
	obj, err := e.st.Get(context.Background(), promotion.Kind, name)
	if err != nil {
		e.t.Fatal(err)
	}
	var st promotion.Status
	obj.DecodeStatus(&st)
	return st
}

func gateStatus(st promotion.Status, name string) string {
	for _, g := range st.Gates {
		if g.Gate == name {
			return string(g.Status)
		}
	}
	return "absent"
}

func TestPromotionFollowsThePipeline(t *testing.T) {
	e := newEnv(t)
	// No skipping: staging needs dev first.
	_, _, err := e.promote("staging", nil)
	var pe *promotion.PolicyError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "has not completed dev") {
		t.Fatalf("skipping dev: %v", err)
	}
	if _, _, err := e.promote("qa", nil); !errors.As(err, &pe) || !strings.Contains(err.Error(), "dev → staging → prod") {
		t.Fatalf("unknown stage: %v", err)
	}
	// The first stage has no gates.
	_, st, err := e.promote("dev", nil)
	if err != nil || st.Phase != promotion.Succeeded || len(st.Gates) != 0 {
		t.Fatalf("dev: %v %+v", err, st)
	}
	before, _, _ := e.st.Audit().Head(context.Background())
	if _, again, err := e.promote("dev", nil); err != nil || again.Phase != promotion.Succeeded || again.Evaluations != 1 {
		t.Fatalf("asking again after success: %v %+v", err, again)
	}
	if after, _, _ := e.st.Audit().Head(context.Background()); after != before {
		t.Fatal("asking again after success wrote to the store")
	}
	// Staging waits for evidence, is blocked by a failure, and passes once
	// fixed evidence arrives; each evaluation is recorded.
	obj, st, err := e.promote("staging", nil)
	if err != nil || st.Phase != promotion.Pending || gateStatus(st, "tests-unit") != "pending" {
		t.Fatalf("staging without evidence: %v %+v", err, st)
	}
	if st.PolicyRevision == 0 {
		t.Fatal("the pipeline revision judged by is not recorded")
	}
	e.add(evidence.Tests, "", junitFail)
	st = e.status(obj.Metadata.Name)
	if st.Phase != promotion.Blocked || gateStatus(st, "tests-unit") != "fail" {
		t.Fatalf("after failing tests: %+v", st)
	}
	e.add(evidence.Coverage, "", coverLow)
	st = e.status(obj.Metadata.Name)
	if gateStatus(st, "coverage") != "fail" || !strings.Contains(strings.Join(st.Gates[1].Reasons, " "), "50") {
		t.Fatalf("low coverage: %+v", st.Gates)
	}
	e.add(evidence.Tests, "", junitPass)
	e.add(evidence.Coverage, "", coverGood)
	st = e.status(obj.Metadata.Name)
	if st.Phase != promotion.Succeeded || st.CompletedAt == nil {
		t.Fatalf("after fixed evidence: %+v", st)
	}
	rel, _ := e.st.Get(context.Background(), "Release", "shop-1.4.0")
	var rs release.Status
	rel.DecodeStatus(&rs)
	if _, ok := rs.Environments["staging"]; !ok {
		t.Fatalf("release status does not record staging: %s", rel.Status)
	}
}

func TestEmergencyStillBlocksOnSecurityGates(t *testing.T) {
	e := newEnv(t)
	e.promote("dev", nil)
	e.add(evidence.Tests, "", junitPass)
	e.add(evidence.Coverage, "", coverGood)
	if _, st, _ := e.promote("staging", nil); st.Phase != promotion.Succeeded {
		t.Fatalf("staging: %+v", st)
	}
	e.add(evidence.Coverage, "", coverLow) // coverage regresses
	e.add(evidence.SAST, "", sarifHigh)    // and a high finding appears

	inc := e.openIncident()
	em := &promotion.Emergency{Incident: inc, Reason: "payment outage hotfix"}
	if _, err := e.promos.Request(context.Background(), store.Actor{Name: "d"}, promotion.Request{App: "shop", Version: "1.4.0", To: "prod", Emergency: &promotion.Emergency{Incident: " ", Reason: "x"}}); err == nil {
		t.Fatal("an emergency without an incident was accepted")
	}
	_, st, err := e.promote("prod", em)
	if err != nil || st.Phase != promotion.Blocked || gateStatus(st, "sast") != "fail" || gateStatus(st, "coverage") != "waived" {
		t.Fatalf("emergency with a high SAST finding: %v %+v", err, st)
	}
	if n, _ := e.reviews(); n != 0 {
		t.Fatal("a blocked emergency opened a review")
	}
	e.add(evidence.SAST, "", sarifClean) // the finding is fixed; coverage still low
	if st = e.status(promotion.Name("shop-1.4.0", "prod")); st.Phase != promotion.Pending || gateStatus(st, promotion.EmergencyGate) != "pending" {
		t.Fatalf("emergency without its approval: %+v", st)
	}
	st = promotiontest.ApproveEmergency(t, e.promos, promotion.Name("shop-1.4.0", "prod"))
	if st.Phase != promotion.Succeeded || st.Review == "" || gateStatus(st, "coverage") != "waived" {
		t.Fatalf("emergency after the fix: %+v", st)
	}
	n, review := e.reviews()
	if n != 1 || review.Incident != inc || !review.DueAt.Equal(e.clock.Now().Add(24*time.Hour)) || strings.Join(review.WaivedGates, ",") != "coverage" {
		t.Fatalf("review: %d %+v", n, review)
	}
	// Past its deadline, the review is flagged overdue, once.
	if flagged, err := e.promos.FlagOverdue(context.Background(), store.Actor{Name: "system:reviews"}); err != nil || flagged != 0 {
		t.Fatalf("flagged %d before the deadline: %v", flagged, err)
	}
	e.clock.Add(24*time.Hour + time.Minute)
	if flagged, err := e.promos.FlagOverdue(context.Background(), store.Actor{Name: "system:reviews"}); err != nil || flagged != 1 {
		t.Fatalf("flagged %d after the deadline: %v", flagged, err)
	}
	if flagged, _ := e.promos.FlagOverdue(context.Background(), store.Actor{Name: "system:reviews"}); flagged != 0 {
		t.Fatal("flagged twice")
	}
}

// openIncident opens a sev1 incident and returns its name.
func (e *env) openIncident() string {
	e.t.Helper()
	o, err := incident.New(e.st).Open(context.Background(), store.Actor{Name: "sre"}, incident.OpenRequest{Severity: incident.Sev1, Summary: "payments down"})
	if err != nil {
		e.t.Fatal(err)
	}
	return o.Metadata.Name
}

func TestEmergencyNeedsAnOpenIncident(t *testing.T) {
	e := newEnv(t)
	e.promote("dev", nil)
	e.add(evidence.Tests, "", junitPass)
	e.add(evidence.Coverage, "", coverLow)
	inc := e.openIncident()
	if _, err := incident.New(e.st).Close(context.Background(), store.Actor{Name: "sre"}, inc, "resolved"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"INC-4711", inc} {
		_, _, err := e.promote("staging", &promotion.Emergency{Incident: name, Reason: "hotfix"})
		var pe *promotion.PolicyError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "incident "+name+" does not exist or is closed") {
			t.Errorf("emergency naming %s: %v, want a PolicyError", name, err)
		}
	}
	if _, err := e.st.Get(context.Background(), promotion.Kind, promotion.Name("shop-1.4.0", "staging")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused emergency left a promotion behind: %v", err)
	}
	if _, st, err := e.promote("staging", &promotion.Emergency{Incident: e.openIncident(), Reason: "hotfix"}); err != nil || gateStatus(st, "coverage") != "waived" {
		t.Errorf("emergency naming an open incident: %v %+v", err, st)
	}
}

func (e *env) reviews() (int, promotion.ReviewSpec) {
	objs, err := e.st.List(context.Background(), promotion.ReviewKind, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var spec promotion.ReviewSpec
	if len(objs) > 0 {
		objs[0].DecodeSpec(&spec)
	}
	return len(objs), spec
}

func TestEvidenceForAnotherArtifactIsRejected(t *testing.T) {
	e := newEnv(t)
	other := strings.Repeat("2", 64)
	sbom := `{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"component":{"type":"application","name":"shop","hashes":[{"alg":"SHA-256","content":"` + other + `"}]}},"components":[]}`
	before, _, _ := e.st.Audit().Head(context.Background())
	_, err := e.ingest.Add(context.Background(), store.Actor{Name: "ci"}, ingest.Request{App: "shop", Version: "1.4.0", Type: evidence.SBOM, Body: bytes.NewReader([]byte(sbom)), Size: int64(len([]byte(sbom)))})
	var me *ingest.MismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), digest) {
		t.Fatalf("SBOM of another artifact: %v", err)
	}
	after, _, _ := e.st.Audit().Head(context.Background())
	if after != before {
		t.Fatal("a rejected document changed state")
	}
	_, err = e.ingest.Add(context.Background(), store.Actor{Name: "ci"}, ingest.Request{App: "shop", Version: "1.4.0", Type: evidence.Tests, Body: bytes.NewReader([]byte("<testsuites><testsuite")), Size: int64(len([]byte("<testsuites><testsuite")))})
	var ie *ingest.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "JUnit") {
		t.Fatalf("truncated JUnit: %v", err)
	}
}
