package server

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/runtime/kubernetes/kubetest"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// The isolation check reads the cluster an environment names through its
// kubeconfig and records what is missing in the environment's status,
// until it is fixed.
func TestRuntimeIsolationCheck(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	kubeconfig := e.Kubeconfig(t, dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "airlock.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o := &resource.Object{APIVersion: resource.APIVersion, Kind: "Environment", Metadata: resource.Metadata{Name: "staging"}}
	o.SetSpec(environment.Spec{Tier: environment.TierStaging, Data: environment.DataMasked, Runtime: environment.RuntimeKubernetes,
		Isolation:  environment.Isolation{Level: environment.LevelNamespace, Network: "staging-net", Credentials: "staging-vault"},
		Kubernetes: &environment.Kubernetes{Kubeconfig: kubeconfig, Namespace: "shop-staging", Traffic: "service"}})
	if err := st.Write(ctx, store.Actor{Name: "test"}, func(tx store.Tx) error { _, err := tx.Create(ctx, o); return err }); err != nil {
		t.Fatal(err)
	}
	rts := newRuntimes(st, nil)
	violations := func() []environment.Violation {
		t.Helper()
		if err := checkIsolation(ctx, st, rts); err != nil {
			t.Fatal(err)
		}
		got, _ := st.Get(ctx, "Environment", "staging")
		var es environment.Status
		got.DecodeStatus(&es)
		return es.Violations
	}
	if v := violations(); len(v) != 1 || v[0].Rule != environment.RuleRuntimeIsolation || !strings.Contains(v[0].Message, "namespace shop-staging does not exist") {
		t.Fatalf("without the namespace: %+v", v)
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop-staging", "labels": map[string]any{"airlock.dev/environment": "staging"}}}
	if code, body, err := e.Do(ctx, http.MethodPost, "/api/v1/namespaces", ns); err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", "namespace", code, body))
	}
	if v := violations(); len(v) != 1 || !strings.Contains(v[0].Message, "no NetworkPolicy in namespace shop-staging") {
		t.Fatalf("without a NetworkPolicy: %+v", v)
	}
	pol := map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": map[string]any{"name": "own-env-only"},
		"spec": map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress"}}}
	if code, body, err := e.Do(ctx, http.MethodPost, "/apis/networking.k8s.io/v1/namespaces/shop-staging/networkpolicies", pol); err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", "networkpolicy", code, body))
	}
	if v := violations(); len(v) != 0 {
		t.Fatalf("with both: %+v", v)
	}
}
