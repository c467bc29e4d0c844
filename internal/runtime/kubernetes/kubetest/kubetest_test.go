package kubetest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/airlock-dev/airlock/internal/runtime/kubernetes/kubetest"
)

// The API server runs and keeps what it is given: a namespace and a
// Deployment created over HTTP are read back.
func TestAPIServer(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop-prod", "labels": map[string]string{"airlock.dev/environment": "prod"}}}
	if code, body, err := e.Do(ctx, http.MethodPost, "/api/v1/namespaces", ns); err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", "/api/v1/namespaces", code, body))
	}
	labels := map[string]string{"app": "shop"}
	dep := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "shop"},
		"spec": map[string]any{"replicas": 2, "selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "shop", "image": "registry.example/shop@sha256:" + sixtyFour}}}}}}
	path := "/apis/apps/v1/namespaces/shop-prod/deployments"
	if code, body, err := e.Do(ctx, http.MethodPost, path, dep); err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", path, code, body))
	}
	code, body, err := e.Do(ctx, http.MethodGet, path+"/shop", nil)
	if err != nil || code != http.StatusOK {
		t.Fatal(err, kubetest.Errorf("GET", path+"/shop", code, body))
	}
	var got struct {
		Spec struct {
			Replicas int `json:"replicas"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &got); err != nil || got.Spec.Replicas != 2 {
		t.Fatalf("read back %s (%v)", body, err)
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
