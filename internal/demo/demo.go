// Package demo is `airlock demo`: one command that starts airlock on a
// temporary data directory, declares dev, staging and prod on the local
// runtime, and walks a small HTTP service through the story the product
// exists for, checking at every step that airlock behaved as the story
// says. It needs nothing but the airlock binary, which is also the
// service it deploys (airlock demo-app).
package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/demoapp"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/verdict"
)

// Options configure a demo run.
type Options struct {
	Out io.Writer // the story
	// Keep leaves the server running at the end, until ctx ends, and
	// prints its address and an admin token.
	Keep bool
	// Binary is the airlock executable deployed as the demo service
	// (default: this process's executable).
	Binary string
	// Dir is the data directory (default: a new temporary directory,
	// removed at the end unless Keep).
	Dir string
}

// StepError names the step of the story that did not behave as told.
type StepError struct {
	Step int
	Name string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("demo step %d (%s): %v", e.Step, e.Name, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

type demo struct {
	o       Options
	out     io.Writer
	dir     string
	admin   *client.Client
	ci      *client.Client
	dana    *client.Client // deployer and tech lead: requests prod promotions
	alice   *client.Client // tech lead
	bob     *client.Client // sre
	url     string
	token   string
	listen  map[string]string
	traffic *traffic
	step    int
	binary  []byte
}

// Run plays the story. It returns nil only when every step behaved as
// told; otherwise a *StepError naming the step.
func Run(ctx context.Context, o Options) (err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	start := time.Now()
	d := &demo{o: o, out: o.Out, listen: map[string]string{}}
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return err
		}
	}
	if d.binary, err = os.ReadFile(o.Binary); err != nil {
		return fmt.Errorf("read the airlock binary to deploy: %w", err)
	}
	d.dir = o.Dir
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "airlock-demo-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(d.dir)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped, err := d.startServer(ctx)
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		<-stopped
		d.stopInstances()
	}()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"declare dev, staging and prod", d.declare},
		{"production runs shop 1.0.0", d.bootstrap},
		{"a failing test blocks 1.1.0", d.blocked},
		{"1.1.1 fixes it: dev, staging, rollback rehearsed", d.fixed},
		{"two people approve 1.1.1 for production; self-approval is refused", d.approvals},
		{"1.1.1 goes to production as a canary", d.canary},
		{"1.2.0 breaks in production and is rolled back automatically", d.bad},
		{"1.3.0 reaches 100% of production", d.good},
		{"the audit chain verifies", d.audit},
	}
	for i, s := range steps {
		d.step = i + 1
		fmt.Fprintf(d.out, "\n==> %d. %s\n", d.step, s.name)
		if err := s.fn(ctx); err != nil {
			fmt.Fprintf(d.out, "    FAILED: %v\n", err)
			return &StepError{Step: d.step, Name: s.name, Err: err}
		}
	}
	total, errs, byVersion := d.traffic.totals()
	fmt.Fprintf(d.out, "\nThe demo behaved as the story says, in %s.\n", time.Since(start).Round(time.Second))
	fmt.Fprintf(d.out, "Production traffic meanwhile: %d requests, %d failed; by version: %s\n", total, errs, byVersion)
	if o.Keep {
		fmt.Fprintf(d.out, "\nairlock keeps running (Ctrl-C to stop):\n  export AIRLOCK_SERVER=%s\n  export AIRLOCK_TOKEN=%s\n  data: %s\n  shop in prod: http://%s/\n", d.url, d.token, d.dir, d.listen["prod"])
		d.traffic.stop()
		<-ctx.Done()
	}
	return nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "    "+format+"\n", args...)
}

func (d *demo) startServer(ctx context.Context) (<-chan struct{}, error) {
	logf, err := os.Create(filepath.Join(d.dir, "server.log"))
	if err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer logf.Close()
		done <- server.Run(ctx, server.Config{DataDir: d.dir, Listen: "127.0.0.1:0",
			Logger: slog.New(slog.NewTextHandler(logf, nil)), Ready: func(addr string) { ready <- addr }})
	}()
	select {
	case addr := <-ready:
		d.url = "http://" + addr
	case err := <-done:
		return nil, fmt.Errorf("start the server: %w", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("the server did not start within 30s")
	}
	tok, err := os.ReadFile(filepath.Join(d.dir, auth.AdminTokenFile))
	if err != nil {
		return nil, err
	}
	d.token = strings.TrimSpace(string(tok))
	if d.admin, err = client.New(d.url, d.token); err != nil {
		return nil, err
	}
	fmt.Fprintf(d.out, "airlock serves on %s (data in %s; its log in server.log)\n", d.url, d.dir)
	return stopped, nil
}

// stopInstances stops what the demo deployed: the instances outlive the
// server by design.
func (d *demo) stopInstances() {
	if d.o.Keep {
		return
	}
	sup, err := local.New(local.Options{Dir: filepath.Join(d.dir, "runtime")})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup.StopAll(ctx)
	sup.Close()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

const config = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, runtime: local, isolation: {level: labels, network: dev-net, credentials: dev-secrets}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: staging}
spec: {tier: staging, data: masked, runtime: local, isolation: {level: labels, network: staging-net, credentials: staging-secrets}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  data: production
  runtime: local
  isolation:
    level: labels
    network: prod-net
    credentials: prod-secrets
    waiver: {reason: "the demo runs everything on this one machine"}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: demo}
spec:
  stages:
  - environment: dev
  - environment: staging
    gates:
    - {type: tests}
    - {type: coverage, minPercent: 80}
  - environment: prod
    gates:
    - {type: approvals, require: {tech-lead: 1, sre: 1}}
%s---
apiVersion: airlock.dev/v1
kind: AnalysisTemplate
metadata: {name: demo}
spec:
  description: the seeds' triggers, looking every second (the demo's canary steps last 3 seconds)
  interval: 1s
  window: 10s
  minRequests: 10
  judge:
    test: mixture  # the demo's errors are independent, so weigh every one: seconds, not half a minute
    tolerance: 1   # a per-second mean latency may move by up to the baseline's own median
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec:
  owners: [team-shop]
  pipeline: demo
  userFacing: true
  environments:
    dev:
      replicas: 1
      listen: "%s"
      args: [demo-app, --latency, 2ms]
      strategy: {type: rolling, progressDeadline: 20s}
    staging:
      replicas: 2
      listen: "%s"
      args: [demo-app, --latency, 2ms]
      strategy: {type: blueGreen, rollbackWindow: 1m, progressDeadline: 20s}
    prod:
      replicas: 3
      listen: "%s"
      args: [demo-app, --latency, 2ms]
      strategy:
        type: canary
        steps: [{weight: 10, pause: 3s}, {weight: 50, pause: 3s}, {weight: 100}]
        progressDeadline: 10s
      analysis: {template: demo}
      rollbackPlan: airlock rollback shop --env prod --reason TEXT (the previous version comes back beside the current one)
`

func (d *demo) apply(ctx context.Context, rollbackGate bool) error {
	extra := ""
	if rollbackGate {
		extra = "    - {type: rollbackTested}\n"
	}
	doc := fmt.Sprintf(config, extra, d.listen["dev"], d.listen["staging"], d.listen["prod"])
	_, err := d.admin.Apply(ctx, "demo.yaml", []byte(doc), "application/yaml", false)
	return err
}

func (d *demo) declare(ctx context.Context) error {
	for _, env := range []string{"dev", "staging", "prod"} {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		d.listen[env] = addr
	}
	if err := d.apply(ctx, false); err != nil {
		return err
	}
	d.say("dev, staging and prod run on the local runtime: shop's versions run as processes behind a router per environment")
	d.say("prod holds production data, so it must be isolated; on one machine it cannot be, and says so: a waiver, on the record")
	users := []struct {
		name  string
		roles []string
		dst   **client.Client
	}{
		{"ci", []string{"ci"}, &d.ci}, {"dana", []string{"deployer", "tech-lead"}, &d.dana},
		{"alice", []string{"tech-lead"}, &d.alice}, {"bob", []string{"sre"}, &d.bob},
	}
	for _, u := range users {
		tok, err := d.admin.CreateToken(ctx, client.TokenRequest{Name: u.name, Roles: u.roles})
		if err != nil {
			return err
		}
		if *u.dst, err = client.New(d.url, tok.Token); err != nil {
			return err
		}
	}
	d.say("people: ci (registers releases), dana (deployer and tech lead), alice (tech lead), bob (sre)")
	return nil
}

// artifact writes a version of the demo service: the airlock binary, with
// a trailer that makes its digest its own and may carry a bug.
func (d *demo) artifact(version, bug string) (string, error) {
	b := append(append([]byte(nil), d.binary...), []byte("\n#airlock-demo-version "+version+"\n")...)
	if bug != "" {
		b = append(b, []byte("\n"+demoapp.TrailerPrefix+bug+"\n")...)
	}
	path := filepath.Join(d.dir, "shop-"+version)
	return path, os.WriteFile(path, b, 0o755)
}

const junitPass = `<testsuite name="shop" tests="3" failures="0"><testcase classname="shop" name="TestCheckout"/><testcase classname="shop" name="TestCart"/><testcase classname="shop" name="TestPay"/></testsuite>`
const junitFail = `<testsuite name="shop" tests="3" failures="1"><testcase classname="shop" name="TestCheckout"/><testcase classname="shop" name="TestCart"/><testcase classname="shop" name="TestPay"><failure message="rounding: got 10.01, want 10.00">shop_test.go:42</failure></testcase></testsuite>`
const cover = "mode: set\nshop/pay.go:10.2,12.3 9 1\nshop/cart.go:5.2,7.3 1 0\n"

// release registers a version with its artifact and CI evidence.
func (d *demo) release(ctx context.Context, version, bug string, tests string) error {
	path, err := d.artifact(version, bug)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	art, err := digestOf(path)
	if err != nil {
		return err
	}
	rel, err := d.ci.CreateRelease(ctx, client.ReleaseRequest{App: "shop", Version: version, Artifact: art, Commit: "9f2c1e7"})
	if err != nil {
		return err
	}
	if err := d.ci.UploadArtifact(ctx, rel.Metadata.Name, f); err != nil {
		return err
	}
	for _, e := range []struct{ typ, body string }{{"tests", tests}, {"coverage", cover}} {
		if _, err := d.ci.AddEvidence(ctx, client.EvidenceRequest{App: "shop", Version: version, Type: e.typ, Body: strings.NewReader(e.body)}); err != nil {
			return fmt.Errorf("evidence %s: %w", e.typ, err)
		}
	}
	d.say("ci registered shop %s (%s) with its test report and coverage", version, art.Digest[:19]+"…")
	return nil
}

// promote asks for a promotion as who and waits while it deploys; it
// returns the final phase and message.
func (d *demo) promote(ctx context.Context, who *client.Client, version, to string) (string, string, error) {
	obj, err := who.Promote(ctx, client.PromotionRequest{App: "shop", Version: version, To: to})
	if err != nil {
		return "", "", err
	}
	for {
		_, st, err := client.DecodePromotion(obj)
		if err != nil {
			return "", "", err
		}
		if st.Phase != client.PhaseDeploying {
			return st.Phase, st.Message, nil
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if obj, err = who.Promotion(ctx, obj.Metadata.Name); err != nil {
			return "", "", err
		}
	}
}

func (d *demo) mustPromote(ctx context.Context, who *client.Client, version, to string) error {
	phase, msg, err := d.promote(ctx, who, version, to)
	if err != nil {
		return err
	}
	if phase != client.PhaseSucceeded {
		return fmt.Errorf("shop %s into %s ended %s: %s", version, to, phase, msg)
	}
	d.say("shop %s serves in %s", version, to)
	return nil
}

func (d *demo) approve(ctx context.Context, version string) error {
	name := client.PromotionName("shop", version, "prod")
	if _, err := d.alice.Approve(ctx, name, "reviewed the change and its rollback plan"); err != nil {
		return err
	}
	if _, err := d.bob.Approve(ctx, name, "capacity and alerts checked"); err != nil {
		return err
	}
	return nil
}

func (d *demo) bootstrap(ctx context.Context) error {
	if err := d.release(ctx, "1.0.0", "", junitPass); err != nil {
		return err
	}
	for _, env := range []string{"dev", "staging"} {
		if err := d.mustPromote(ctx, d.dana, "1.0.0", env); err != nil {
			return err
		}
	}
	if _, _, err := d.promote(ctx, d.dana, "1.0.0", "prod"); err != nil {
		return err
	}
	if err := d.approve(ctx, "1.0.0"); err != nil {
		return err
	}
	if err := d.waitPromotion(ctx, "1.0.0", "prod", client.PhaseSucceeded); err != nil {
		return err
	}
	d.say("shop 1.0.0 serves in prod, approved by alice and bob")
	// From now on production also needs a rehearsed rollback (there was
	// nothing to roll back to before 1.0.0).
	if err := d.apply(ctx, true); err != nil {
		return err
	}
	d.say("the pipeline now also requires a rehearsed rollback before production (rollbackTested)")
	d.traffic = startTraffic(ctx, d.listen["prod"])
	d.say("a traffic generator sends ~50 requests/s to shop in prod from now on")
	return nil
}

func (d *demo) waitPromotion(ctx context.Context, version, to, want string) error {
	name := client.PromotionName("shop", version, to)
	deadline := time.Now().Add(90 * time.Second)
	for {
		obj, err := d.admin.Promotion(ctx, name)
		if err != nil {
			return err
		}
		_, st, err := client.DecodePromotion(obj)
		if err != nil {
			return err
		}
		if st.Phase == want {
			return nil
		}
		if st.Phase != client.PhaseDeploying && st.Phase != client.PhasePending {
			return fmt.Errorf("promotion %s is %s, not %s: %s", name, st.Phase, want, st.Message)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("promotion %s is still %s after 90s: %s", name, st.Phase, st.Message)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (d *demo) blocked(ctx context.Context) error {
	if err := d.release(ctx, "1.1.0", "", junitFail); err != nil {
		return err
	}
	if err := d.mustPromote(ctx, d.dana, "1.1.0", "dev"); err != nil {
		return err
	}
	phase, msg, err := d.promote(ctx, d.dana, "1.1.0", "staging")
	if err != nil {
		return err
	}
	if phase != client.PhaseBlocked {
		return fmt.Errorf("shop 1.1.0 into staging is %s, want Blocked: %s", phase, msg)
	}
	obj, err := d.admin.Promotion(ctx, client.PromotionName("shop", "1.1.0", "staging"))
	if err != nil {
		return err
	}
	_, st, _ := client.DecodePromotion(obj)
	d.say("BLOCKED, as it should be: %s", msg)
	for _, g := range st.Gates {
		if g.Status == client.GateFail {
			d.say("  %s: %s", g.Gate, strings.Join(g.Reasons, "; "))
		}
	}
	return nil
}

func (d *demo) fixed(ctx context.Context) error {
	if err := d.release(ctx, "1.1.1", "", junitPass); err != nil {
		return err
	}
	for _, env := range []string{"dev", "staging"} {
		if err := d.mustPromote(ctx, d.dana, "1.1.1", env); err != nil {
			return err
		}
	}
	return d.rehearse(ctx)
}

func (d *demo) rehearse(ctx context.Context) error {
	reh, failure, err := d.dana.Rehearse(ctx, "shop", "staging", "before production")
	if err != nil {
		return err
	}
	if !reh.Passed {
		return fmt.Errorf("the rollback rehearsal of %s in staging failed: %s", reh.Version, failure)
	}
	d.say("rollback rehearsed in staging: back to %s in %d ms, then %s restored (recorded on the release)", reh.Previous, reh.RollbackMs, reh.Version)
	return nil
}

func (d *demo) approvals(ctx context.Context) error {
	phase, msg, err := d.promote(ctx, d.dana, "1.1.1", "prod")
	if err != nil {
		return err
	}
	if phase != client.PhasePending {
		return fmt.Errorf("shop 1.1.1 into prod is %s, want Pending on approvals: %s", phase, msg)
	}
	d.say("dana asks to promote 1.1.1 to prod: %s", msg)
	name := client.PromotionName("shop", "1.1.1", "prod")
	_, err = d.dana.Approve(ctx, name, "looks good to me")
	var ae *client.APIError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "requested promotion") {
		return fmt.Errorf("dana approving her own promotion was not refused: %v", err)
	}
	d.say("dana (a tech lead) tries to approve her own request: REFUSED: %s", ae.Detail)
	if err := d.approve(ctx, "1.1.1"); err != nil {
		return err
	}
	d.say("alice (tech lead) and bob (sre) approve: the gates pass and the rollout starts")
	return nil
}

func (d *demo) canary(ctx context.Context) error {
	return d.followCanary(ctx, "1.1.1", client.PhaseSucceeded)
}

// followCanary prints the canary's steps and the traffic split while the
// promotion deploys, and checks its outcome.
func (d *demo) followCanary(ctx context.Context, version, want string) error {
	name := client.PromotionName("shop", version, "prod")
	seen := ""
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if ro, err := d.admin.CurrentRollout(ctx, "shop", "prod"); err == nil {
			_, st, _ := rollout.Decode(ro)
			for _, e := range st.Events {
				line := e.Message
				if !strings.Contains(seen, line+"\n") {
					seen += line + "\n"
					d.say("rollout: %s   [traffic: %s]", line, d.traffic.recent())
				}
			}
		}
		obj, err := d.admin.Promotion(ctx, name)
		if err != nil {
			return err
		}
		_, st, _ := client.DecodePromotion(obj)
		if st.Phase != client.PhaseDeploying {
			if st.Phase != want {
				return fmt.Errorf("shop %s into prod ended %s, want %s: %s", version, st.Phase, want, st.Message)
			}
			time.Sleep(time.Second)
			d.say("promotion %s: %s   [traffic: %s]", st.Phase, st.Message, d.traffic.recent())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shop %s is still deploying after 2 minutes", version)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (d *demo) bad(ctx context.Context) error {
	// 1.2.0 works everywhere but in production, where 40% of its answers
	// are errors (say, a production-only configuration).
	if err := d.release(ctx, "1.2.0", "--error-rate 0.4 --misbehave-in prod", junitPass); err != nil {
		return err
	}
	for _, env := range []string{"dev", "staging"} {
		if err := d.mustPromote(ctx, d.dana, "1.2.0", env); err != nil {
			return err
		}
	}
	if err := d.rehearse(ctx); err != nil {
		return err
	}
	_, failedBefore, _ := d.traffic.totals()
	if _, _, err := d.promote(ctx, d.dana, "1.2.0", "prod"); err != nil {
		return err
	}
	if err := d.approve(ctx, "1.2.0"); err != nil {
		return err
	}
	if err := d.followCanary(ctx, "1.2.0", client.PhaseFailed); err != nil {
		return err
	}
	_, failedAfter, _ := d.traffic.totals()
	rows, err := d.admin.Status(ctx, "shop")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Environment == "prod" && r.Serving != "1.1.1" {
			return fmt.Errorf("prod serves %q after the failed rollout, want 1.1.1", r.Serving)
		}
	}
	if got := d.traffic.servedRecently("1.1.1"); !got {
		return fmt.Errorf("traffic is not back on 1.1.1: %s", d.traffic.recent())
	}
	objs, err := d.admin.ListVerdicts(ctx, "app=shop,environment=prod,outcome=fail")
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return fmt.Errorf("no fail verdict of the analysis on shop 1.2.0 in prod")
	}
	v, err := verdict.Decode(objs[len(objs)-1])
	if err != nil {
		return err
	}
	d.say("verdict %s: %s, %s (automatic: %v): %s", v.Name, v.Spec.Outcome, v.Spec.Action, v.Spec.Automatic, v.Spec.Summary)
	d.say("1.2.0 was ROLLED BACK automatically: prod serves 1.1.1 again")
	d.say("the canary's blast radius: %d failed requests of 1.2.0 before the analysis rolled it back", failedAfter-failedBefore)
	return nil
}

func (d *demo) good(ctx context.Context) error {
	if err := d.release(ctx, "1.3.0", "", junitPass); err != nil {
		return err
	}
	for _, env := range []string{"dev", "staging"} {
		if err := d.mustPromote(ctx, d.dana, "1.3.0", env); err != nil {
			return err
		}
	}
	if err := d.rehearse(ctx); err != nil {
		return err
	}
	if _, _, err := d.promote(ctx, d.dana, "1.3.0", "prod"); err != nil {
		return err
	}
	if err := d.approve(ctx, "1.3.0"); err != nil {
		return err
	}
	if err := d.followCanary(ctx, "1.3.0", client.PhaseSucceeded); err != nil {
		return err
	}
	if !d.traffic.servedRecently("1.3.0") {
		return fmt.Errorf("traffic is not on 1.3.0: %s", d.traffic.recent())
	}
	return nil
}

func (d *demo) audit(ctx context.Context) error {
	res, err := d.admin.AuditVerify(ctx)
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("audit verify: %s", res.Summary)
	}
	d.say("%s", res.Summary)
	return nil
}

func digestOf(path string) (client.Artifact, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return client.Artifact{}, err
	}
	return client.Artifact{Digest: sha256Hex(b), Name: filepath.Base(path), Size: int64(len(b))}, nil
}

// traffic sends requests to a router and keeps what answered.
type traffic struct {
	mu     sync.Mutex
	total  int
	errs   int
	by     map[string]int
	window []sample // the last few seconds
	cancel context.CancelFunc
}

type sample struct {
	at      time.Time
	version string // "" for a failure
}

func startTraffic(ctx context.Context, addr string) *traffic {
	ctx, cancel := context.WithCancel(ctx)
	t := &traffic{by: map[string]int{}, cancel: cancel}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			v := ""
			if resp, err := client.Get("http://" + addr + "/"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					v = strings.TrimSpace(strings.TrimPrefix(string(bytes.TrimSpace(b)), "version "))
				}
			}
			t.add(v)
		}
	}()
	return t
}

func (t *traffic) stop() {
	if t != nil {
		t.cancel()
	}
}

func (t *traffic) add(v string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total++
	if v == "" {
		t.errs++
	} else {
		t.by[v]++
	}
	now := time.Now()
	t.window = append(t.window, sample{at: now, version: v})
	for len(t.window) > 0 && now.Sub(t.window[0].at) > time.Second {
		t.window = t.window[1:]
	}
}

// recent describes the last second: "1.1.1 52%, 1.0.0 48%".
func (t *traffic) recent() string {
	if t == nil {
		return "-"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.window) == 0 {
		return "no requests"
	}
	count := map[string]int{}
	for _, s := range t.window {
		v := s.version
		if v == "" {
			v = "failed"
		}
		count[v]++
	}
	return describe(count, len(t.window))
}

func describe(count map[string]int, n int) string {
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d%%", k, (100*count[k]+n/2)/n)
	}
	return strings.Join(parts, ", ")
}

// servedRecently reports whether every request of the last second went to
// version.
func (t *traffic) servedRecently(version string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.window {
		if time.Since(s.at) > time.Second {
			continue
		}
		if s.version != version {
			return false
		}
		n++
	}
	return n > 0
}

func (t *traffic) totals() (int, int, string) {
	if t == nil {
		return 0, 0, "-"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, t.errs, describe(t.by, max(t.total-t.errs, 1))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
