package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/runtime/kubernetes/kubetest"
)

// httpRouteCRD stands in for the Gateway API's HTTPRoute definition: the
// same group, version and kind, without its validation schema (the real
// CRDs are not available here).
const httpRouteCRD = `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
"metadata":{"name":"httproutes.gateway.networking.k8s.io","annotations":{"api-approved.kubernetes.io":"https://github.com/kubernetes-sigs/gateway-api/pull/891"}},
"spec":{"group":"gateway.networking.k8s.io","scope":"Namespaced",
"names":{"plural":"httproutes","singular":"httproute","kind":"HTTPRoute","listKind":"HTTPRouteList"},
"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}]}}`

// cluster starts an API server with the HTTPRoute kind and a namespace,
// and returns a client of it.
func cluster(t *testing.T, namespaces ...string) *Client {
	t.Helper()
	e := kubetest.Start(t)
	ctx := context.Background()
	c, err := NewClient(e.URL, e.Token, e.CA, nil)
	if err != nil {
		t.Fatal(err)
	}
	var crd any
	json.Unmarshal([]byte(httpRouteCRD), &crd)
	if code, body, err := e.Do(ctx, http.MethodPost, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd); err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", "crd", code, body))
	}
	for _, ns := range namespaces {
		if code, body, err := e.Do(ctx, http.MethodPost, "/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}); err != nil || code != http.StatusCreated {
			t.Fatal(err, kubetest.Errorf("POST", "namespace", code, body))
		}
	}
	// The HTTPRoute kind is served once the CRD is established.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.List(ctx, httpRouteKind, namespaces[0], "")
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPRoute not served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func desired(weights map[string]int, replicas int) rollout.Desired {
	d := rollout.Desired{App: "shop", Environment: "prod", Runtime: rollout.Runtime{HealthPath: "/healthz", Image: "registry.example/shop"}}
	for _, v := range []string{"1.5.0", "1.4.0"} {
		if w, ok := weights[v]; ok {
			d.Versions = append(d.Versions, rollout.DesiredVersion{Version: rollout.Version{Version: v, Digest: digest}, Replicas: replicas, Weight: w})
		}
	}
	return d
}

// setReady acts as the controller manager and kubelet: the Deployment
// reports ready replicas.
func setReady(t *testing.T, c *Client, ns, name string, ready int) {
	t.Helper()
	patch := fmt.Sprintf(`{"status":{"replicas":%d,"readyReplicas":%d,"availableReplicas":%d}}`, ready, ready, ready)
	if err := c.do(context.Background(), http.MethodPatch, deploymentKind.path(ns)+"/"+name+"/status", "application/merge-patch+json", []byte(patch), nil); err != nil {
		t.Fatal(err)
	}
}

func TestCanaryOnKubernetes(t *testing.T) {
	c := cluster(t, "shop-prod")
	ctx := context.Background()
	tg := &Target{Client: c, Config: Config{Namespace: "shop-prod", Gateway: ParentRef{Name: "public", Namespace: "gateways"}}}

	// 90/10 between the stable version and the candidate.
	if err := tg.Apply(ctx, desired(map[string]int{"1.4.0": 90, "1.5.0": 10}, 2)); err != nil {
		t.Fatal(err)
	}
	route, err := c.Get(ctx, httpRouteKind, "shop-prod", "shop")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(dig(route, "spec", "rules"))
	if !strings.Contains(string(b), `{"name":"shop-1-5-0","port":80,"weight":10}`) || !strings.Contains(string(b), `{"name":"shop-1-4-0","port":80,"weight":90}`) {
		t.Fatalf("route rules %s", b)
	}
	dep, err := c.Get(ctx, deploymentKind, "shop-prod", "shop-1-5-0")
	if err != nil {
		t.Fatal(err)
	}
	if image(dep) != "registry.example/shop@"+digest || toInt(dig(dep, "spec", "replicas")) != 2 {
		t.Fatalf("Deployment %v", dep["spec"])
	}
	managers, _ := json.Marshal(dig(dep, "metadata", "managedFields"))
	if !strings.Contains(string(managers), `"manager":"airlock"`) || !strings.Contains(string(managers), `"operation":"Apply"`) {
		t.Errorf("not written by server-side apply as airlock: %s", managers)
	}

	// Observation: ready replicas, as the kubelet reports them.
	obs, err := tg.Observe(ctx, "shop", "prod", &rollout.Version{Version: "1.5.0"}, &rollout.Version{Version: "1.4.0"})
	if err != nil || obs.Candidate.Healthy != 0 {
		t.Fatalf("before the kubelet: %+v %v", obs, err)
	}
	setReady(t, c, "shop-prod", "shop-1-5-0", 2)
	obs, err = tg.Observe(ctx, "shop", "prod", &rollout.Version{Version: "1.5.0"}, &rollout.Version{Version: "1.4.0"})
	if err != nil || obs.Candidate.Healthy != 2 || obs.Candidate.SmokeOK == nil || !*obs.Candidate.SmokeOK {
		t.Fatalf("after the kubelet: %+v %v", obs, err)
	}

	// A person scales the candidate by hand: reported and reverted.
	if err := c.do(ctx, http.MethodPatch, deploymentKind.path("shop-prod")+"/shop-1-5-0", "application/merge-patch+json", []byte(`{"spec":{"replicas":7}}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := tg.Apply(ctx, desired(map[string]int{"1.4.0": 90, "1.5.0": 10}, 2)); err != nil {
		t.Fatal(err)
	}
	obs, _ = tg.Observe(ctx, "shop", "prod", &rollout.Version{Version: "1.5.0"}, nil)
	if len(obs.Drift) != 1 || !strings.Contains(obs.Drift[0], "Deployment shop-1-5-0: replicas 7, airlock set 2; reverted") {
		t.Fatalf("drift %q", obs.Drift)
	}
	dep, _ = c.Get(ctx, deploymentKind, "shop-prod", "shop-1-5-0")
	if toInt(dig(dep, "spec", "replicas")) != 2 {
		t.Fatalf("replicas not reverted: %v", dig(dep, "spec", "replicas"))
	}

	// With keepDrift the edit stays, and is still reported.
	if err := c.do(ctx, http.MethodPatch, deploymentKind.path("shop-prod")+"/shop-1-5-0", "application/merge-patch+json", []byte(`{"spec":{"replicas":4}}`), nil); err != nil {
		t.Fatal(err)
	}
	keep := desired(map[string]int{"1.4.0": 90, "1.5.0": 10}, 2)
	keep.Runtime.KeepDrift = true
	if err := tg.Apply(ctx, keep); err != nil {
		t.Fatal(err)
	}
	obs, _ = tg.Observe(ctx, "shop", "prod", &rollout.Version{Version: "1.5.0"}, nil)
	dep, _ = c.Get(ctx, deploymentKind, "shop-prod", "shop-1-5-0")
	if len(obs.Drift) != 1 || !strings.Contains(obs.Drift[0], "left in place") || toInt(dig(dep, "spec", "replicas")) != 4 {
		t.Fatalf("keepDrift: drift %q, replicas %v", obs.Drift, dig(dep, "spec", "replicas"))
	}

	// The candidate takes all traffic; the old version's objects go.
	if err := tg.Apply(ctx, desired(map[string]int{"1.5.0": 100}, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, deploymentKind, "shop-prod", "shop-1-4-0"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("the old Deployment is still there: %v", err)
	}
	if _, err := c.Get(ctx, serviceKind, "shop-prod", "shop-1-4-0"); err == nil {
		t.Fatal("the old version's Service is still there")
	}
	route, _ = c.Get(ctx, httpRouteKind, "shop-prod", "shop")
	if b, _ := json.Marshal(dig(route, "spec", "rules")); string(b) != `[{"backendRefs":[{"name":"shop-1-5-0","port":80,"weight":100}]}]` {
		t.Fatalf("route after the promotion: %s", b)
	}
}

func TestBlueGreenOnKubernetesSwitchesTheSelector(t *testing.T) {
	c := cluster(t, "shop-stage")
	ctx := context.Background()
	tg := &Target{Client: c, Config: Config{Namespace: "shop-stage", Traffic: TrafficService}}
	for _, w := range []map[string]int{{"1.4.0": 100, "1.5.0": 0}, {"1.4.0": 0, "1.5.0": 100}} {
		if err := tg.Apply(ctx, desired(w, 1)); err != nil {
			t.Fatal(err)
		}
		svc, err := c.Get(ctx, serviceKind, "shop-stage", "shop")
		if err != nil {
			t.Fatal(err)
		}
		want := "1-4-0"
		if w["1.5.0"] == 100 {
			want = "1-5-0"
		}
		if got := dig(svc, "spec", "selector", VersionLabel); got != want {
			t.Fatalf("weights %v: the Service selects version %v, want %s", w, got, want)
		}
	}
	if items, _ := c.List(ctx, httpRouteKind, "shop-stage", ""); len(items) != 0 {
		t.Fatalf("traffic: service wrote %d HTTPRoutes", len(items))
	}
}

func TestCheckIsolation(t *testing.T) {
	c := cluster(t, "shop-dev")
	ctx := context.Background()
	found, err := CheckIsolation(ctx, c, "prod", "shop-prod", "namespace")
	if err != nil || len(found) != 1 || !strings.Contains(found[0], "namespace shop-prod does not exist") {
		t.Fatalf("missing namespace: %q %v", found, err)
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop-prod", "labels": map[string]any{EnvironmentLabel: "prod"}}}
	body, _ := json.Marshal(ns)
	if err := c.do(ctx, http.MethodPost, "/api/v1/namespaces", "application/json", body, nil); err != nil {
		t.Fatal(err)
	}
	if found, _ := CheckIsolation(ctx, c, "prod", "shop-prod", "labels"); len(found) != 0 {
		t.Fatalf("labels level: %q", found)
	}
	found, _ = CheckIsolation(ctx, c, "prod", "shop-prod", "namespace")
	if len(found) != 1 || !strings.Contains(found[0], "no NetworkPolicy in namespace shop-prod restricts ingress") {
		t.Fatalf("without a policy: %q", found)
	}
	open := map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": map[string]any{"name": "allow-all"},
		"spec": map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress"}, "ingress": []any{map[string]any{}}}}
	body, _ = json.Marshal(open)
	if err := c.do(ctx, http.MethodPost, networkPolicyKind.path("shop-prod"), "application/json", body, nil); err != nil {
		t.Fatal(err)
	}
	if found, _ := CheckIsolation(ctx, c, "prod", "shop-prod", "namespace"); len(found) != 1 {
		t.Fatalf("a policy that admits everyone isolates nothing: %q", found)
	}
	pol := map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": map[string]any{"name": "deny-other-envs"},
		"spec": map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress"},
			"ingress": []any{map[string]any{"from": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{EnvironmentLabel: "prod"}}}}}}}}
	body, _ = json.Marshal(pol)
	if err := c.do(ctx, http.MethodPost, networkPolicyKind.path("shop-prod"), "application/json", body, nil); err != nil {
		t.Fatal(err)
	}
	if found, _ := CheckIsolation(ctx, c, "prod", "shop-prod", "namespace"); len(found) != 0 {
		t.Fatalf("with a policy: %q", found)
	}
	if found, _ := CheckIsolation(ctx, c, "staging", "shop-prod", "namespace"); len(found) != 1 || !strings.Contains(found[0], "does not carry the label airlock.dev/environment=staging") {
		t.Fatalf("another environment's namespace: %q", found)
	}
}

// With a service account's token and CA where a pod has them, airlock
// reaches the API server it runs under.
func TestInClusterReachesTheAPIServer(t *testing.T) {
	e := kubetest.Start(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte(e.Token+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.crt"), e.CA, 0o600)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(e.URL, "https://"))
	c, err := InCluster(dir, func(k string) string {
		return map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(context.Background(), serviceKind, "default", ""); err != nil {
		t.Fatal(err)
	}
}

// A rolling update is the Deployment's own: one Deployment moves to the
// candidate with the strategy's surge, pauses when the rollout holds, and
// moves back to the stable version on a rollback; progress is read from
// its updated and ready replicas.
func TestRollingOnKubernetesIsTheDeployments(t *testing.T) {
	c := cluster(t, "shop-qa")
	ctx := context.Background()
	tg := &Target{Client: c, Config: Config{Namespace: "shop-qa", Traffic: TrafficService}}
	rolling := func(candidateReplicas, stableReplicas int, paused bool) rollout.Desired {
		d := rollout.Desired{App: "shop", Environment: "qa", Runtime: rollout.Runtime{Image: "registry.example/shop"},
			Rolling: &rollout.RollingUpdate{Candidate: "1.5.0", Replicas: 3, MaxSurge: 1, MaxUnavailable: 0, Paused: paused}}
		if candidateReplicas > 0 {
			d.Versions = append(d.Versions, rollout.DesiredVersion{Version: rollout.Version{Version: "1.5.0", Digest: digest}, Replicas: candidateReplicas})
		}
		if stableReplicas > 0 {
			d.Versions = append(d.Versions, rollout.DesiredVersion{Version: rollout.Version{Version: "1.4.0", Digest: "sha256:" + strings.Repeat("9", 64)}, Replicas: stableReplicas})
		}
		return d
	}
	if err := tg.Apply(ctx, rolling(1, 2, false)); err != nil {
		t.Fatal(err)
	}
	dep, err := c.Get(ctx, deploymentKind, "shop-qa", "shop")
	if err != nil {
		t.Fatal(err)
	}
	strategy, _ := json.Marshal(dig(dep, "spec", "strategy"))
	if image(dep) != "registry.example/shop@"+digest || toInt(dig(dep, "spec", "replicas")) != 3 || string(strategy) != `{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0},"type":"RollingUpdate"}` {
		t.Fatalf("Deployment: image %s, replicas %v, strategy %s", image(dep), dig(dep, "spec", "replicas"), strategy)
	}
	if items, _ := c.List(ctx, deploymentKind, "shop-qa", ""); len(items) != 1 {
		t.Fatalf("%d Deployments, want the one", len(items))
	}
	// The controller has replaced one pod of three.
	gen := toInt(dig(dep, "metadata", "generation"))
	status := fmt.Sprintf(`{"status":{"observedGeneration":%d,"replicas":3,"updatedReplicas":1,"readyReplicas":3}}`, gen)
	if err := c.do(ctx, http.MethodPatch, deploymentKind.path("shop-qa")+"/shop/status", "application/merge-patch+json", []byte(status), nil); err != nil {
		t.Fatal(err)
	}
	obs, err := tg.Observe(ctx, "shop", "qa", &rollout.Version{Version: "1.5.0"}, &rollout.Version{Version: "1.4.0"})
	if err != nil || obs.Candidate.Running != 1 || obs.Candidate.Healthy != 1 || obs.Stable.Running != 2 || obs.Stable.Healthy != 2 {
		t.Fatalf("observation %+v %v", obs, err)
	}
	// The rollout holds: so does the Deployment.
	if err := tg.Apply(ctx, rolling(1, 2, true)); err != nil {
		t.Fatal(err)
	}
	dep, _ = c.Get(ctx, deploymentKind, "shop-qa", "shop")
	if dig(dep, "spec", "paused") != true {
		t.Fatalf("paused = %v", dig(dep, "spec", "paused"))
	}
	// Rolled back: the template names the stable version again.
	if err := tg.Apply(ctx, rolling(0, 3, false)); err != nil {
		t.Fatal(err)
	}
	dep, _ = c.Get(ctx, deploymentKind, "shop-qa", "shop")
	if !strings.HasSuffix(image(dep), strings.Repeat("9", 64)) || dig(dep, "spec", "paused") == true {
		t.Fatalf("after the rollback: image %s, paused %v", image(dep), dig(dep, "spec", "paused"))
	}
	obs, _ = tg.Observe(ctx, "shop", "qa", &rollout.Version{Version: "1.5.0"}, &rollout.Version{Version: "1.4.0"})
	if obs.Stable.Running != 0 || obs.Candidate.Running != 3 {
		// The controller has not seen the new template yet: nothing counts as updated.
		t.Fatalf("before the controller sees the rollback: %+v", obs)
	}
}
