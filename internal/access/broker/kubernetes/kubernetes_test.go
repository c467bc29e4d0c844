package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
	kube "github.com/airlock-dev/airlock/internal/runtime/kubernetes"
	"github.com/airlock-dev/airlock/internal/runtime/kubernetes/kubetest"
)

func setup(t *testing.T) (*kubetest.Env, *kube.Client) {
	t.Helper()
	e := kubetest.Start(t)
	ctx := context.Background()
	for _, obj := range []struct {
		path string
		body map[string]any
	}{
		{"/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "orders"}}},
		{"/api/v1/namespaces", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "billing"}}},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles", map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": map[string]any{"name": "pod-reader"}, "rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get", "list"}}}}},
	} {
		if code, body, err := e.Do(ctx, http.MethodPost, obj.path, obj.body); err != nil || code != http.StatusCreated {
			t.Fatal(err, kubetest.Errorf("POST", obj.path, code, body))
		}
	}
	c, err := kube.NewClient(e.URL, e.Token, e.CA, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, c
}

func grant(id, who string) broker.Grant {
	return broker.Grant{ID: id, Requester: who, Environment: "prod", Resource: "orders-k8s", Role: "readonly",
		Grants: []string{"pod-reader"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
}

// allowed asks the API server whether user may list pods in ns.
func allowed(t *testing.T, e *kubetest.Env, user, ns string) bool {
	t.Helper()
	sar := map[string]any{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": map[string]any{"user": user, "resourceAttributes": map[string]any{"namespace": ns, "verb": "list", "resource": "pods"}}}
	code, body, err := e.Do(context.Background(), http.MethodPost, "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
	if err != nil || code != http.StatusCreated {
		t.Fatal(err, kubetest.Errorf("POST", "subjectaccessreviews", code, body))
	}
	var out struct {
		Status struct {
			Allowed bool `json:"allowed"`
		} `json:"status"`
	}
	json.Unmarshal(body, &out)
	return out.Status.Allowed
}

func TestUserAccess(t *testing.T) {
	e, c := setup(t)
	ctx := context.Background()
	b := &Broker{Client: c, Config: Config{Namespace: "orders", Subject: SubjectUser}, Now: time.Now}
	g := grant("acc-20261127-001", "alice@example.com")
	if allowed(t, e, g.Requester, "orders") {
		t.Fatal("alice could list pods before the grant")
	}
	for range 2 { // a retried grant reuses what the first made
		issued, err := b.Grant(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if issued.Handle != "orders/airlock-access-acc-20261127-001-0" || issued.Credential["user"] != g.Requester {
			t.Fatalf("issued %+v", issued)
		}
	}
	if !allowed(t, e, g.Requester, "orders") || allowed(t, e, g.Requester, "billing") || allowed(t, e, "bob@example.com", "orders") {
		t.Fatal("the grant is not exactly alice in orders")
	}
	for range 2 { // revoking what is gone is fine
		if err := b.Revoke(ctx, g, ""); err != nil {
			t.Fatal(err)
		}
	}
	if allowed(t, e, g.Requester, "orders") {
		t.Fatal("alice can still list pods after the revocation")
	}
}

func TestServiceAccountAccess(t *testing.T) {
	e, c := setup(t)
	ctx := context.Background()
	b := &Broker{Client: c, Config: Config{Namespace: "orders", Subject: SubjectServiceAccount}, Now: time.Now}
	g := grant("acc-20261127-002", "carol@example.com")
	issued, err := b.Grant(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	token := issued.Credential["token"]
	if token == "" || issued.Credential["server"] != e.URL || issued.Credential["namespace"] != "orders" {
		t.Fatalf("credential %v", issued.Credential)
	}
	if strings.Contains(issued.Handle, token) {
		t.Fatal("the handle holds the token")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CA)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	get := func(ns string) int {
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v1/namespaces/"+ns+"/pods", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("orders"); got != http.StatusOK {
		t.Fatalf("with the token in orders: %d", got)
	}
	if got := get("billing"); got != http.StatusForbidden {
		t.Fatalf("with the token in billing: %d", got)
	}
	if err := b.Revoke(ctx, g, issued.Handle); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("orders") != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the token still works after the revocation")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestParseConfig(t *testing.T) {
	for raw, want := range map[string]string{
		`{"kubeconfig":"kube.yaml","namespace":"orders"}`:                     "absolute path",
		`{"kubeconfig":"/k","namespace":"Orders"}`:                            "not a DNS label",
		`{"kubeconfig":"/k","namespace":"orders","subject":"group"}`:          "user or serviceAccount",
		`{"kubeconfig":"/k","namespace":"orders","token":"x"}`:                "unknown field \"token\"",
		`{"kubeconfig":"/k","namespace":"orders","subject":"serviceAccount"}`: "",
	} {
		_, err := ParseConfig(json.RawMessage(raw))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}
