package local

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/rollout"
)

func desired(listen string, versions ...rollout.DesiredVersion) rollout.Desired {
	return rollout.Desired{App: "shop", Environment: "dev", Versions: versions,
		Runtime: rollout.Runtime{Listen: listen, HealthPath: "/healthz", Env: map[string]string{modeVar: "demo"}}}
}

func dv(version string, replicas, weight int) rollout.DesiredVersion {
	return rollout.DesiredVersion{Version: rollout.Version{Version: version, Release: "shop-" + version, Digest: testDigest}, Replicas: replicas, Weight: weight}
}

// versionsServed sends n requests through the router and counts the
// versions that answered; failed requests count as "error".
func versionsServed(t *testing.T, addr string, n int, header string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		if header != "" {
			req.Header.Set("X-Airlock-Version", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out["error"]++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			out["error"]++
			continue
		}
		out[strings.TrimSpace(strings.TrimPrefix(string(b), "version "))]++
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTargetRunsVersionsBehindTheRouter(t *testing.T) {
	sup, _ := newSupervisor(t, nil)
	tgt := NewTarget(sup, TargetOptions{})
	t.Cleanup(func() { tgt.Close(context.Background()) })
	ctx := context.Background()
	v1 := &rollout.Version{Version: "v1"}
	v2 := &rollout.Version{Version: "v2"}

	if err := tgt.Apply(ctx, desired("", dv("v1", 2, 100))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v1 healthy", func() bool { o, _ := tgt.Observe(ctx, "shop", "dev", v1, nil); return o.Candidate.Healthy == 2 })
	addr := tgt.Address("shop", "dev")
	waitFor(t, "the router serving v1", func() bool { return versionsServed(t, addr, 1, "")["v1"] == 1 })
	if o, _ := tgt.Observe(ctx, "shop", "dev", v1, nil); o.Candidate.SmokeOK == nil || !*o.Candidate.SmokeOK {
		t.Fatalf("smoke of a healthy version: %+v", o.Candidate)
	}

	// A canary step: v2 beside v1, half the traffic each.
	if err := tgt.Apply(ctx, desired("", dv("v2", 2, 50), dv("v1", 2, 50))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2 healthy", func() bool {
		o, _ := tgt.Observe(ctx, "shop", "dev", v2, v1)
		return o.Candidate.Healthy == 2 && o.Stable.Healthy == 2
	})
	waitFor(t, "both versions served", func() bool {
		got := versionsServed(t, addr, 40, "")
		return got["v1"] > 5 && got["v2"] > 5 && got["error"] == 0
	})
	if got := versionsServed(t, addr, 20, "v2"); got["v2"] != 20 {
		t.Fatalf("the override header: %v", got)
	}

	// All traffic on v2: v1 is stopped.
	if err := tgt.Apply(ctx, desired("", dv("v2", 2, 100))); err != nil {
		t.Fatal(err)
	}
	if got := versionsServed(t, addr, 30, ""); got["v2"] != 30 {
		t.Fatalf("after the switch: %v", got)
	}
	for _, in := range sup.Instances("shop", "dev", "v1") {
		if in.State != StateStopped {
			t.Fatalf("v1 instance %d is %s after the switch", in.Index, in.State)
		}
	}
}

func TestTargetRefusesWhatItCannotRun(t *testing.T) {
	sup, _ := newSupervisor(t, nil)
	tgt := NewTarget(sup, TargetOptions{Getenv: func(k string) string { return map[string]string{"SHOP_DB": "s3cret-value"}[k] }})
	t.Cleanup(func() { tgt.Close(context.Background()) })
	ctx := context.Background()

	missing := dv("v9", 1, 100)
	missing.Digest = "sha256:" + strings.Repeat("0", 64)
	if err := tgt.Apply(ctx, desired("", missing)); err == nil || !strings.Contains(err.Error(), "is not in airlock's content store") {
		t.Fatalf("missing artifact: %v", err)
	}

	d := desired("", dv("v1", 1, 100))
	d.Runtime.SecretEnv = map[string]string{"DB_PASSWORD": "SHOP_DB_MISSING"}
	if err := tgt.Apply(ctx, d); err == nil || !strings.Contains(err.Error(), "SHOP_DB_MISSING is not set") {
		t.Fatalf("missing secret: %v", err)
	}

	// The listen address is taken by another router.
	if err := tgt.Apply(ctx, desired("", dv("v1", 1, 100))); err != nil {
		t.Fatal(err)
	}
	taken := tgt.Address("shop", "dev")
	other := desired(taken, dv("v1", 1, 100))
	other.Environment = "staging"
	if err := tgt.Apply(ctx, other); err == nil || !strings.Contains(err.Error(), "cannot listen on "+taken) {
		t.Fatalf("taken address: %v", err)
	}

	// A version that exits at once is observed as failed, with the reason.
	bad := desired("", dv("v1", 1, 100))
	bad.Environment = "qa"
	bad.Runtime.Env = map[string]string{modeVar: "exit"}
	if err := tgt.Apply(ctx, bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crashing version to fail", func() bool {
		o, _ := tgt.Observe(ctx, "shop", "qa", &rollout.Version{Version: "v1"}, nil)
		return o.Candidate.Failed && strings.Contains(o.Candidate.Reason, "exit status 3")
	})
}
