package analysis_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/demoapp"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/rollout/rollouttest"
	"github.com/airlock-dev/airlock/internal/router"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/verdict"
)

// The test binary is the application the rollouts deploy: with
// DEMO_MODE=serve it runs the demo service with the instance's arguments
// (its version comes from AIRLOCK_VERSION).
func TestMain(m *testing.M) {
	if os.Getenv("DEMO_MODE") == "serve" {
		if err := demoapp.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// world is a store, the local runtime with its router, the rollout
// reconciler and the analysis controller, as a server runs them.
type world struct {
	t       *testing.T
	st      store.Store
	target  *local.Target
	rec     *rollout.Reconciler
	digest  string
	listen  string
	traffic sync.WaitGroup
	stopped chan struct{}
}

func newWorld(t *testing.T, policy *environment.AnalysisPolicy) *world {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "airlock.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, st: st, listen: ln.Addr().String(), stopped: make(chan struct{})}
	ln.Close()
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	w.digest = "sha256:" + hex.EncodeToString(sum[:])
	opts := local.Options{Dir: filepath.Join(dir, "runtime"), HealthInterval: 50 * time.Millisecond, AdoptPollInterval: 50 * time.Millisecond}
	sup, err := local.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(self)
	defer f.Close()
	if _, err := sup.Put(f, w.digest); err != nil {
		t.Fatal(err)
	}
	w.target = local.NewTarget(sup, local.TargetOptions{})
	w.rec = &rollout.Reconciler{Store: st, Target: w.target}
	ctl := &analysis.Controller{Store: st, Source: server.NewAnalysisSource(w.target), Bounds: router.LatencyBounds(), Wake: w.rec.Wake}
	ctx, cancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	loops.Go(func() { w.rec.Loop(ctx) })
	loops.Go(func() { ctl.Loop(ctx) })
	t.Cleanup(func() {
		close(w.stopped)
		w.traffic.Wait()
		cancel()
		loops.Wait()
		stop, done := context.WithTimeout(context.Background(), 20*time.Second)
		defer done()
		w.target.Close(stop)
		sup.StopAll(stop)
		sup.Close()
	})
	w.create("Environment", "prod", environment.Spec{Tier: environment.TierProduction, Analysis: policy})
	// The mixture test: these tests' errors are independent, and they are
	// about what the analysis does with a verdict, not how fast the
	// default (robust) test reaches one (internal/analysis/stats does).
	tmpl := analysis.TemplateSpec{Interval: "1s", Window: "10s", MinRequests: 20, Judge: analysis.JudgeSpec{Test: analysis.TestMixture}}
	if _, err := analysis.Resolve("fast", tmpl, nil); err != nil {
		t.Fatal(err)
	}
	w.create(analysis.Kind, "fast", tmpl)
	return w
}

// serving is a world in which shop 1.0.0 serves in prod, for a test that
// runs in parallel with the others and is skipped with -short.
func serving(t *testing.T, policy *environment.AnalysisPolicy) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real processes")
	}
	t.Parallel()
	w := newWorld(t, policy)
	w.wait(w.deploy("1.0.0", canary("1s"), nil), rollout.Succeeded, 30*time.Second)
	return w
}

func (w *world) create(kind, name string, spec any) {
	w.t.Helper()
	o := &resource.Object{APIVersion: resource.APIVersion, Kind: kind, Metadata: resource.Metadata{Name: name}}
	if err := o.SetSpec(spec); err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.Write(context.Background(), store.Actor{Name: "admin"}, func(tx store.Tx) error {
		_, err := tx.Create(context.Background(), o)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
}

// deploy starts a rollout of version with the demo service's args.
func (w *world) deploy(version string, s application.Strategy, a *application.Analysis, args ...string) string {
	w.t.Helper()
	var name string
	err := w.st.Write(context.Background(), store.Actor{Name: "deployer"}, func(tx store.Tx) error {
		one := 1
		o, err := rollout.Start(context.Background(), tx, rollout.StartRequest{
			App: "shop", Environment: "prod", Candidate: rollout.Version{Version: version, Release: "shop-" + version, Digest: w.digest},
			Settings: application.EnvSettings{Replicas: &one, Listen: w.listen, Strategy: &s, Args: args, Analysis: a,
				Env: map[string]string{"DEMO_MODE": "serve"}},
		})
		if err == nil {
			name = o.Metadata.Name
		}
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.rec.Wake()
	return name
}

func (w *world) wait(name string, phase rollout.Phase, within time.Duration) rollout.Status {
	w.t.Helper()
	return rollouttest.Wait(w.t, w.st, name, phase, within)
}

// sendTraffic sends about rps requests a second through the router until
// the test ends.
func (w *world) sendTraffic(rps int) {
	client := &http.Client{Timeout: 2 * time.Second}
	w.traffic.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		for {
			select {
			case <-w.stopped:
				return
			case <-tick.C:
			}
			resp, err := client.Get("http://" + w.listen + "/")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
}

// served sends n requests and counts who answered.
func (w *world) served(n int) map[string]int { return rollouttest.Served(w.listen, n) }

func (w *world) verdicts(rolloutName string) []verdict.Verdict {
	w.t.Helper()
	objs, err := w.st.List(context.Background(), verdict.Kind, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []verdict.Verdict
	for _, o := range objs {
		v, err := verdict.Decode(o)
		if err != nil {
			w.t.Fatal(err)
		}
		if v.Spec.Subject.Name == rolloutName {
			out = append(out, v)
		}
	}
	return out
}

func canary(pause string) application.Strategy {
	return application.Strategy{Type: application.Canary, Steps: []application.CanaryStep{{Weight: 50, Pause: pause}, {Weight: 100}}}
}

var fast = &application.Analysis{Template: "fast"}

func TestAnalysisRollsBackABadCanaryAutomatically(t *testing.T) {
	w := serving(t, nil)
	w.sendTraffic(100)
	started := time.Now()
	name := w.deploy("1.1.0", canary("60s"), fast, "--error-rate", "0.3")
	st := w.wait(name, rollout.Failed, 40*time.Second)
	took := time.Since(started)
	if !strings.Contains(st.Message, "canary rolled back by the analysis") {
		t.Errorf("message %q", st.Message)
	}
	vs := w.verdicts(name)
	if len(vs) != 1 {
		t.Fatalf("%d verdicts, want 1: %+v", len(vs), vs)
	}
	v := vs[0]
	if v.Spec.Outcome != verdict.Fail || v.Spec.Action != application.ActionRollbackCanary || !v.Spec.Automatic ||
		v.Status.Executed == nil || v.Status.Executed.By != analysis.JudgeName || v.Spec.Judge != analysis.JudgeName {
		t.Fatalf("verdict %+v / %+v", v.Spec, v.Status)
	}
	if !strings.Contains(v.Spec.Summary, "error rate") || !strings.Contains(v.Spec.Summary, "baseline over") || v.Spec.Confidence < 0.99 {
		t.Errorf("summary %q confidence %v", v.Spec.Summary, v.Spec.Confidence)
	}
	t.Logf("bad canary rolled back %s after the rollout started: %s", took.Round(100*time.Millisecond), v.Spec.Summary)
	if got := w.served(20); got["1.0.0"] != 20 {
		t.Fatalf("after the rollback: %v", got)
	}
}

func TestAnalysisLetsAGoodCanaryThroughStepByStep(t *testing.T) {
	w := serving(t, nil)
	w.sendTraffic(100)
	name := w.deploy("1.1.0", canary("3s"), fast)
	st := w.wait(name, rollout.Succeeded, 40*time.Second)
	if st.Analysis == nil || st.Analysis.PassedStep == nil || *st.Analysis.PassedStep != 0 {
		t.Fatalf("analysis status %+v: the 50%% step did not pass by a verdict", st.Analysis)
	}
	vs := w.verdicts(name)
	if len(vs) != 1 || vs[0].Spec.Outcome != verdict.Pass || vs[0].Spec.Action != application.ActionContinue || vs[0].Spec.Score == nil || *vs[0].Spec.Score < 95 {
		t.Fatalf("verdicts %+v", vs)
	}
	if vs[0].Name != st.Analysis.Verdict {
		t.Errorf("status names verdict %s, recorded %s", st.Analysis.Verdict, vs[0].Name)
	}
	// The versions' logs were read and mined: no new error template.
	logsRead := false
	for _, sg := range vs[0].Spec.Signals {
		if sg.Name == "log-patterns" && sg.Outcome == verdict.Pass && strings.Contains(sg.Detail, "candidate lines") && !strings.Contains(sg.Detail, " 0 candidate") {
			logsRead = true
		}
	}
	if !logsRead {
		t.Errorf("no log-patterns result in %+v", vs[0].Spec.Signals)
	}
}

func TestAnalysisWaitsForAPersonWhereThePolicySaysSo(t *testing.T) {
	w := serving(t, &environment.AnalysisPolicy{Automatic: []string{"continue", "extend", "pause"}})
	w.sendTraffic(100)
	name := w.deploy("1.1.0", canary("60s"), fast, "--error-rate", "0.3")
	st := w.wait(name, rollout.Paused, 40*time.Second)
	vs := w.verdicts(name)
	if len(vs) != 1 || vs[0].Spec.Automatic || vs[0].Spec.Action != application.ActionRollbackCanary || vs[0].Status.Executed != nil {
		t.Fatalf("verdicts %+v", vs)
	}
	v := vs[0]
	if st.Analysis == nil || st.Analysis.Awaiting != v.Name {
		t.Fatalf("the rollout does not wait on verdict %s: %+v", v.Name, st.Analysis)
	}
	// The judge may not decide; a person accepts, and the canary is rolled back.
	ctx := context.Background()
	then := analysis.Decided(w.rec.Wake)
	if _, err := verdict.Decide(ctx, w.st, store.Actor{Name: analysis.JudgeName}, verdict.DecideRequest{Name: v.Name, Decision: verdict.AcceptDecision, Reason: "mine", Then: then}); err == nil {
		t.Fatal("the analysis accepted its own verdict")
	}
	if _, err := verdict.Decide(ctx, w.st, store.Actor{Name: "alice"}, verdict.DecideRequest{Name: v.Name, Decision: verdict.AcceptDecision, Reason: "30% errors is real", Then: then}); err != nil {
		t.Fatal(err)
	}
	st = w.wait(name, rollout.Failed, 20*time.Second)
	if !strings.Contains(st.Message, "decided by alice") {
		t.Errorf("message %q", st.Message)
	}
	v = w.verdicts(name)[0]
	if v.Status.Executed == nil || v.Status.Executed.By != "alice" || v.Status.Executed.Action != application.ActionRollbackCanary {
		t.Fatalf("verdict status %+v", v.Status)
	}
}

func TestAnalysisPausesACanaryWithoutTrafficUntilAPersonPassesIt(t *testing.T) {
	w := serving(t, nil)
	name := w.deploy("1.1.0", canary("2s"), fast)
	st := w.wait(name, rollout.Paused, 30*time.Second)
	vs := w.verdicts(name)
	if len(vs) != 1 || vs[0].Spec.Outcome != verdict.Inconclusive || vs[0].Spec.Action != application.ActionPause ||
		!strings.Contains(vs[0].Spec.Summary, "no data is never a pass") || st.Analysis.Awaiting != vs[0].Name {
		t.Fatalf("verdicts %+v, status %+v", vs, st.Analysis)
	}
	if _, err := verdict.Decide(context.Background(), w.st, store.Actor{Name: "bob"}, verdict.DecideRequest{Name: vs[0].Name,
		Decision: verdict.OverrideDecision, Outcome: verdict.Pass, Reason: "a quiet hour; smoke-tested by hand", Then: analysis.Decided(w.rec.Wake)}); err != nil {
		t.Fatal(err)
	}
	w.wait(name, rollout.Succeeded, 20*time.Second)
}

// prometheus is an HTTP server that speaks the Prometheus query API:
// /api/v1/query answers a vector whose value value() gives for the
// version named in the query.
func prometheus(t *testing.T, value func(version string) string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		q := r.FormValue("query")
		version := "?"
		if _, rest, ok := strings.Cut(q, `version="`); ok {
			version, _, _ = strings.Cut(rest, `"`)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":%q},"value":[%d,%q]}]}}`,
			version, time.Now().Unix(), value(version))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAnalysisPausesOnABusinessMetricDrop(t *testing.T) {
	w := serving(t, nil)
	prom := prometheus(t, func(version string) string {
		if version == "1.1.0" {
			return "70" // checkouts a minute: 30% fewer than the baseline
		}
		return "100"
	})
	w.create(analysis.Kind, "business", analysis.TemplateSpec{Interval: "1s", MinRequests: 10,
		Prometheus: &analysis.PrometheusSpec{URL: prom},
		Queries:    []analysis.QuerySpec{{Name: "business", Query: `sum(rate(checkouts_total{app="{{app}}",version="{{version}}"}[1m]))`}},
		Triggers: []application.Trigger{{Name: "business", Metric: "query:business", Below: &application.Threshold{Percent: ptrTo(20.0)},
			For: "2s", Action: application.ActionPause}},
	})
	w.sendTraffic(50)
	name := w.deploy("1.1.0", canary("60s"), &application.Analysis{Template: "business"})
	st := w.wait(name, rollout.Paused, 40*time.Second)
	vs := w.verdicts(name)
	if len(vs) != 1 || vs[0].Spec.Outcome != verdict.Fail || vs[0].Spec.Action != application.ActionPause ||
		!strings.Contains(vs[0].Spec.Summary, "trigger business fired: business 70 vs 100 baseline") || st.Analysis.Awaiting != vs[0].Name {
		t.Fatalf("verdicts %+v, analysis %+v", vs, st.Analysis)
	}
}

func TestAnalysisIsInconclusiveWhenPrometheusAnswersNaN(t *testing.T) {
	w := serving(t, nil)
	prom := prometheus(t, func(string) string { return "NaN" })
	w.create(analysis.Kind, "nan", analysis.TemplateSpec{Interval: "1s", MinRequests: 10,
		Prometheus: &analysis.PrometheusSpec{URL: prom},
		Queries:    []analysis.QuerySpec{{Name: "orders", Query: `sum(orders{version="{{version}}"})`}},
	})
	w.sendTraffic(50)
	name := w.deploy("1.1.0", canary("60s"), &application.Analysis{Template: "nan"})
	w.wait(name, rollout.Paused, 40*time.Second)
	vs := w.verdicts(name)
	if len(vs) != 1 || vs[0].Spec.Outcome != verdict.Inconclusive || vs[0].Spec.Action != application.ActionPause ||
		!strings.Contains(vs[0].Spec.Summary, "query:orders failed 3 times in a row") || !strings.Contains(vs[0].Spec.Summary, "NaN") {
		t.Fatalf("verdicts %+v", vs)
	}
}

func TestAnalysisProbeFailuresPrepareARollbackAPersonConfirms(t *testing.T) {
	w := serving(t, nil)
	// The probe reaches the candidate through the router and wants the
	// stable version's answer, so the candidate fails it every time.
	w.create(analysis.Kind, "probed", analysis.TemplateSpec{Interval: "1s", MinRequests: 10,
		Probes: []analysis.ProbeSpec{{Name: "home", URL: "http://{{listen}}/", Headers: map[string]string{"X-Airlock-Version": "{{version}}"},
			BodyContains: "version 1.0.0", Interval: "1s", Timeout: "2s"}},
	})
	w.sendTraffic(50)
	name := w.deploy("1.1.0", canary("60s"), &application.Analysis{Template: "probed"})
	st := w.wait(name, rollout.Paused, 40*time.Second)
	vs := w.verdicts(name)
	if len(vs) != 1 || vs[0].Spec.Action != application.ActionRollback || vs[0].Spec.Automatic || st.Analysis.Awaiting != vs[0].Name ||
		!strings.Contains(vs[0].Spec.Summary, "probe home failed 3 times in a row") {
		t.Fatalf("verdicts %+v, analysis %+v", vs, st.Analysis)
	}
	if _, err := verdict.Decide(context.Background(), w.st, store.Actor{Name: "carol"}, verdict.DecideRequest{Name: vs[0].Name,
		Decision: verdict.AcceptDecision, Reason: "the home page is broken", Then: analysis.Decided(w.rec.Wake)}); err != nil {
		t.Fatal(err)
	}
	st = w.wait(name, rollout.RolledBack, 20*time.Second)
	if got := w.served(10); got["1.0.0"] != 10 {
		t.Fatalf("after the confirmed rollback: %v (%s)", got, st.Message)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestAnalysisIsInconclusiveWithoutItsSignals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		template string
		want     string
	}{
		{"a probe host that does not resolve", "unresolvable", "probe:home failed 3 times in a row"},
		{"a template that is not there", "absent", "could not load its configuration 3 times: analysis template absent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serving(t, nil)
			w.create(analysis.Kind, "unresolvable", analysis.TemplateSpec{Interval: "1s", MinRequests: 10,
				Probes: []analysis.ProbeSpec{{Name: "home", URL: "http://airlock-test-host.invalid/", Interval: "1s", Timeout: "2s"}}})
			w.sendTraffic(50)
			name := w.deploy("1.1.0", canary("60s"), &application.Analysis{Template: tc.template})
			w.wait(name, rollout.Paused, 40*time.Second)
			vs := w.verdicts(name)
			if len(vs) != 1 || vs[0].Spec.Outcome != verdict.Inconclusive || vs[0].Spec.Action != application.ActionPause || !strings.Contains(vs[0].Spec.Summary, tc.want) {
				t.Fatalf("verdicts %+v", vs)
			}
		})
	}
}
