package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/cluster/replicas"
	"github.com/airlock-dev/airlock/internal/runtime/kubernetes/kubetest"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
)

// kubelet acts as the kubelet and controller manager for every Deployment
// in ns: each reports all its replicas ready, until ctx ends.
func kubelet(ctx context.Context, e *kubetest.Env, ns string) {
	path := "/apis/apps/v1/namespaces/" + ns + "/deployments"
	for ctx.Err() == nil {
		if code, body, err := e.Do(ctx, http.MethodGet, path, nil); err == nil && code == http.StatusOK {
			var list struct {
				Items []struct {
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
					Spec struct {
						Replicas int `json:"replicas"`
					} `json:"spec"`
					Status struct {
						Ready int `json:"readyReplicas"`
					} `json:"status"`
				} `json:"items"`
			}
			json.Unmarshal(body, &list)
			for _, d := range list.Items {
				if d.Status.Ready == d.Spec.Replicas {
					continue
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, e.URL+path+"/"+d.Metadata.Name+"/status",
					strings.NewReader(fmt.Sprintf(`{"status":{"replicas":%d,"readyReplicas":%d,"availableReplicas":%d}}`, d.Spec.Replicas, d.Spec.Replicas, d.Spec.Replicas)))
				req.Header.Set("Authorization", "Bearer "+e.Token)
				req.Header.Set("Content-Type", "application/merge-patch+json")
				if resp, err := e.Client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// The leader dies in the middle of a canary on Kubernetes; the next
// leader carries it on from its status to 100%, and no step runs twice.
func TestFailoverMidCanaryOnKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three airlock servers and a kube-apiserver")
	}
	e := kubetest.Start(t)
	url := pgtest.FreshDatabase(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "airlock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/airlock-dev/airlock/cmd/airlock").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if code, body, err := e.Do(ctx, http.MethodPost, "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": "shop-dev", "labels": map[string]any{"airlock.dev/environment": "dev"}}}); err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", "namespace", code, body))
	}
	go kubelet(ctx, e, "shop-dev")
	kubeconfig := e.Kubeconfig(t, dir)
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec:
  tier: development
  data: synthetic
  runtime: kubernetes
  isolation: {level: namespace, network: dev-net, credentials: dev-secrets}
  kubernetes: {kubeconfig: %q, namespace: shop-dev, traffic: service}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec:
  tier: production
  data: production
  runtime: kubernetes
  isolation: {level: cluster, network: prod-net, credentials: prod-secrets}
  kubernetes: {kubeconfig: %q, context: prod, namespace: shop-prod, traffic: service}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec:
  stages: [{environment: dev}, {environment: prod}]
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec:
  owners: [team-shop]
  pipeline: default
  environments:
    dev:
      replicas: 2
      image: registry.example/shop
      strategy:
        type: canary
        steps: [{weight: 20, pause: 4s}, {weight: 50, pause: 4s}, {weight: 80, pause: 4s}, {weight: 100}]
`, kubeconfig, kubeconfig)), 0o644)

	set, err := replicas.Start(ctx, bin, url, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	cli := func(args ...string) string {
		t.Helper()
		out, err := set.Run(set.Token, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cli("apply", "-f", config)
	for i, v := range []string{"1.0.0", "1.1.0"} {
		cli("release", "create", "shop", v, "--artifact", "sha256:"+strings.Repeat(fmt.Sprint(i+1), 64), "--commit", "9f2c1e"+fmt.Sprint(i))
	}
	cli("promote", "shop", "1.0.0", "--to", "dev", "--wait", "--timeout", "60s")
	cli("promote", "shop", "1.1.0", "--to", "dev")

	rolloutOf := func() (phase string, events []string) {
		var ro struct {
			Status struct {
				Phase  string `json:"phase"`
				Events []struct {
					Message string `json:"message"`
				} `json:"events"`
			} `json:"status"`
		}
		json.Unmarshal([]byte(cli("rollout", "get", "shop", "--env", "dev", "-o", "json")), &ro)
		for _, ev := range ro.Status.Events {
			events = append(events, ev.Message)
		}
		return ro.Status.Phase, events
	}
	// Kill the leader once the canary is at its second step.
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, events := rolloutOf()
		if strings.Contains(strings.Join(events, "\n"), "step 2 of 4") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canary did not reach step 2: %q", events)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leader, _, err := set.WaitLeader(ctx, 10*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	set.Kill(set.ProcOf(leader))
	deadline = time.Now().Add(90 * time.Second)
	for {
		phase, events := rolloutOf()
		if phase == "Succeeded" {
			all := strings.Join(events, "\n")
			for _, step := range []string{"step 1 of 4", "step 2 of 4", "step 3 of 4", "step 4 of 4"} {
				if n := strings.Count(all, step); n != 1 {
					t.Errorf("%q appears %d times in the events:\n%s", step, n, all)
				}
			}
			break
		}
		if phase != "Progressing" || time.Now().After(deadline) {
			t.Fatalf("after the leader's death the canary is %s: %q", phase, events)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The cluster shows the new version alone, selected by the Service.
	code, body, err := e.Do(ctx, http.MethodGet, "/api/v1/namespaces/shop-dev/services/shop", nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"airlock.dev/version":"1-1-0"`) {
		t.Fatalf("the Service after the canary: %d %s %v", code, body, err)
	}
	if code, _, _ := e.Do(ctx, http.MethodGet, "/apis/apps/v1/namespaces/shop-dev/deployments/shop-1-0-0", nil); code != http.StatusNotFound {
		t.Fatalf("the old Deployment is still there (%d)", code)
	}
}
