package rollout_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/demoapp"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/rollout/rollouttest"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// The test binary is the application the rollouts deploy: with DEMO_MODE
// set it runs the demo service (its version comes from AIRLOCK_VERSION),
// with DEMO_MODE=crash it exits at once.
func TestMain(m *testing.M) {
	switch os.Getenv("DEMO_MODE") {
	case "":
		os.Exit(m.Run())
	case "crash":
		fmt.Fprintln(os.Stderr, "panic: missing configuration")
		os.Exit(2)
	default:
		if err := demoapp.Run(context.Background(), nil, os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
}

type world struct {
	t      *testing.T
	st     store.Store
	dir    string
	sup    *local.Supervisor
	target *local.Target
	rec    *rollout.Reconciler
	svc    *rollout.Service
	cancel context.CancelFunc
	done   sync.WaitGroup
	digest string
	listen string
	mu     sync.Mutex
	ended  []string // rollouts OnFinish saw end, with their phase
}

func newWorld(t *testing.T) *world {
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
	listen := ln.Addr().String()
	ln.Close()
	w := &world{t: t, st: st, dir: dir, listen: listen}
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	w.digest = "sha256:" + hex.EncodeToString(sum[:])
	w.start()
	t.Cleanup(func() {
		w.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sup, err := local.New(supOptions(dir))
		if err == nil {
			sup.StopAll(ctx)
			sup.Close()
		}
	})
	return w
}

func supOptions(dir string) local.Options {
	return local.Options{Dir: filepath.Join(dir, "runtime"), HealthInterval: 50 * time.Millisecond, AdoptPollInterval: 50 * time.Millisecond,
		Backoff: local.BackoffPolicy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, ResetAfter: time.Minute, MaxCrashes: 2}}
}

// start runs a supervisor, a target and a reconciler loop, as a server does.
func (w *world) start() {
	sup, err := local.New(supOptions(w.dir))
	if err != nil {
		w.t.Fatal(err)
	}
	self, _ := os.Executable()
	f, _ := os.Open(self)
	defer f.Close()
	if _, err := sup.Put(f, w.digest); err != nil {
		w.t.Fatal(err)
	}
	w.sup, w.target = sup, local.NewTarget(sup, local.TargetOptions{})
	w.rec = &rollout.Reconciler{Store: w.st, Target: w.target, OnFinish: func(_ context.Context, _ store.Tx, name string, _ rollout.Spec, st rollout.Status) error {
		w.mu.Lock()
		w.ended = append(w.ended, name+"="+string(st.Phase))
		w.mu.Unlock()
		return nil
	}}
	w.svc = rollout.NewService(w.st, w.rec.Wake)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done.Add(1)
	go func() { defer w.done.Done(); w.rec.Loop(ctx) }()
}

// stop ends the loop and the routers, as a server stopping (or killed)
// does; the instances keep running.
func (w *world) stop() {
	w.cancel()
	w.done.Wait()
	w.target.Close(context.Background())
	w.sup.Close()
}

func (w *world) deploy(version string, s application.Strategy) string {
	w.t.Helper()
	var name string
	err := w.st.Write(context.Background(), store.Actor{Name: "deployer"}, func(tx store.Tx) error {
		o, err := rollout.Start(context.Background(), tx, rollout.StartRequest{
			App: "shop", Environment: "prod", Candidate: rollout.Version{Version: version, Release: "shop-" + version, Digest: w.digest},
			Settings: application.EnvSettings{Replicas: ptr(2), Listen: w.listen, Strategy: &s, Env: map[string]string{"DEMO_MODE": modeFor(version)}},
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

func modeFor(version string) string {
	if strings.HasPrefix(version, "bad") {
		return "crash"
	}
	return "serve"
}

func ptr(n int) *int { return &n }

func (w *world) wait(name string, phase rollout.Phase) rollout.Status {
	w.t.Helper()
	return rollouttest.Wait(w.t, w.st, name, phase, 30*time.Second)
}

// served sends n requests through the router and counts who answered.
func (w *world) served(n int) map[string]int { return rollouttest.Served(w.listen, n) }

func canary(steps ...application.CanaryStep) application.Strategy {
	return application.Strategy{Type: application.Canary, Steps: steps}
}

func TestRolloutsOnTheLocalRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for several seconds")
	}
	w := newWorld(t)
	ctx := context.Background()

	// First deploy.
	first := w.deploy("1.0.0", application.Strategy{Type: application.BlueGreen})
	w.wait(first, rollout.Succeeded)
	if got := w.served(20); got["1.0.0"] != 20 {
		t.Fatalf("after the first deploy: %v", got)
	}

	// A canary: half the traffic, then all; no request fails on the way.
	second := w.deploy("1.1.0", canary(application.CanaryStep{Weight: 50, Pause: "1s"}, application.CanaryStep{Weight: 100}))
	seen := map[string]int{}
	for {
		o, _ := w.st.Get(ctx, rollout.Kind, second)
		_, st, _ := rollout.Decode(o)
		for k, v := range w.served(10) {
			seen[k] += v
		}
		if !st.Phase.Active() {
			if st.Phase != rollout.Succeeded {
				t.Fatalf("canary ended %s: %s", st.Phase, st.Message)
			}
			break
		}
	}
	if seen["1.0.0"] == 0 || seen["1.1.0"] == 0 || len(seen) != 2 {
		t.Fatalf("during the canary: %v", seen)
	}
	if got := w.served(20); got["1.1.0"] != 20 {
		t.Fatalf("after the canary: %v", got)
	}

	// A version that crashes fails its rollout; traffic stays on 1.1.0.
	bad := w.deploy("bad-1.2.0", canary(application.CanaryStep{Weight: 100}))
	st := w.wait(bad, rollout.Failed)
	if !strings.Contains(st.Message, "panic: missing configuration") {
		t.Fatalf("failure reason: %s", st.Message)
	}
	if got := w.served(20); got["1.1.0"] != 20 {
		r := w.target.Router("shop", "prod")
		t.Logf("config %+v health %+v", r.Config(), r.Health())
		for _, in := range w.sup.List() {
			t.Logf("%s %s %s %s", in.ID, in.State, in.Address, in.Reason)
		}
		t.Fatalf("after the failed rollout: %v", got)
	}

	// Blue-green, then a rollback inside the window: traffic back on the
	// old version within 2 seconds.
	third := w.deploy("1.3.0", application.Strategy{Type: application.BlueGreen, RollbackWindow: "5m"})
	w.wait(third, rollout.Succeeded)
	if got := w.served(10); got["1.3.0"] != 10 {
		t.Fatalf("after the switch: %v", got)
	}
	start := time.Now()
	if _, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Rollback, "checkout errors"); err != nil {
		t.Fatal(err)
	}
	for w.served(1)["1.1.0"] != 1 {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("traffic not back on 1.1.0 within 2s")
		}
	}
	t.Logf("blue-green rollback: traffic back on the previous version in %s", time.Since(start))
	w.wait(third, rollout.RolledBack)

	// A rollback after the old version stopped brings it back.
	fourth := w.deploy("1.4.0", canary(application.CanaryStep{Weight: 100}))
	w.wait(fourth, rollout.Succeeded)
	back, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Rollback, "latency")
	if err != nil {
		t.Fatal(err)
	}
	if back.Metadata.Name == fourth {
		t.Fatal("a rollback after the window did not start a new rollout")
	}
	w.wait(back.Metadata.Name, rollout.Succeeded)
	if got := w.served(10); got["1.1.0"] != 10 {
		t.Fatalf("after the rollback: %v", got)
	}

	// airlock restarts: the instances are adopted and the router comes
	// back on its address with the weights of the status.
	w.stop()
	if got := w.served(1); got["error"] != 1 {
		t.Fatalf("the router answered while airlock was down: %v", got)
	}
	w.start()
	deadline := time.Now().Add(10 * time.Second)
	for w.served(1)["1.1.0"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: %v", w.served(5))
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.mu.Lock()
	ended := strings.Join(w.ended, ",")
	w.mu.Unlock()
	for _, want := range []string{first + "=Succeeded", second + "=Succeeded", bad + "=Failed", third + "=Succeeded", third + "=RolledBack"} {
		if !strings.Contains(ended, want) {
			t.Errorf("OnFinish did not see %s: %s", want, ended)
		}
	}
	var objs []*resource.Object
	objs, _ = w.st.List(ctx, rollout.Kind, nil)
	if len(objs) != 6 {
		t.Fatalf("%d rollouts recorded, want 6", len(objs))
	}
}

func TestCommandsAreChecked(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Pause, ""); err == nil || !strings.Contains(err.Error(), "no rollout of shop in prod") {
		t.Fatalf("pausing nothing: %v", err)
	}
	first := w.deploy("1.0.0", canary(application.CanaryStep{Weight: 100}))
	w.wait(first, rollout.Succeeded)
	var pe *rollout.PolicyError
	if _, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Rollback, "why not"); err == nil || !strings.Contains(err.Error(), "nothing to roll back to") {
		t.Fatalf("rolling back a first deploy: %v", err)
	}
	if _, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Abort, " "); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Fatalf("abort without a reason: %v", err)
	}
	if _, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Pause, ""); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Fatalf("pausing a finished rollout: %v (%T)", err, pe)
	}
	// A second rollout while one runs is refused.
	second := w.deploy("1.1.0", canary(application.CanaryStep{Weight: 50, Pause: application.ManualPause}, application.CanaryStep{Weight: 100}))
	w.wait(second, rollout.Paused)
	err := w.st.Write(ctx, store.Actor{Name: "deployer"}, func(tx store.Tx) error {
		_, err := rollout.Start(ctx, tx, rollout.StartRequest{App: "shop", Environment: "prod", Candidate: rollout.Version{Version: "1.2.0", Digest: w.digest}})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "is still Paused") {
		t.Fatalf("a second rollout: %v", err)
	}
	if _, err := w.svc.Do(ctx, store.Actor{Name: "sre"}, "shop", "prod", rollout.Resume, ""); err != nil {
		t.Fatal(err)
	}
	w.wait(second, rollout.Succeeded)
}

// TestRollingLosesNoRequest replaces instances one at a time while POST
// requests (which the router does not retry) keep arriving: none fails.
func TestRollingLosesNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	w := newWorld(t)
	first := w.deploy("1.0.0", application.Strategy{Type: application.Rolling})
	w.wait(first, rollout.Succeeded)

	stop := make(chan struct{})
	done := make(chan map[string]int)
	go func() {
		got := map[string]int{}
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				done <- got
				return
			default:
			}
			resp, err := client.Post("http://"+w.listen+"/", "text/plain", strings.NewReader("order"))
			if err != nil {
				got["error"]++
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got[fmt.Sprint(resp.StatusCode)]++
		}
	}()
	second := w.deploy("1.1.0", application.Strategy{Type: application.Rolling})
	w.wait(second, rollout.Succeeded)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	got := <-done
	if got["200"] == 0 || len(got) != 1 {
		t.Fatalf("POST requests during a rolling update: %v", got)
	}
	if served := w.served(10); served["1.1.0"] != 10 {
		t.Fatalf("after the rolling update: %v", served)
	}
}
