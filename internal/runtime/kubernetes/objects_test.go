package kubernetes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/rollout"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func canaryDesired() rollout.Desired {
	return rollout.Desired{App: "shop", Environment: "prod", Runtime: rollout.Runtime{HealthPath: "/healthz", Env: map[string]string{"B": "2", "A": "1"}},
		Versions: []rollout.DesiredVersion{
			{Version: rollout.Version{Version: "1.5.0", Digest: digest}, Replicas: 2, Weight: 10},
			{Version: rollout.Version{Version: "1.4.0", Digest: digest}, Replicas: 3, Weight: 90},
		}}
}

func find(objs []Object, kind, name string) Object {
	for _, o := range objs {
		if o["kind"] == kind && o["metadata"].(map[string]any)["name"] == name {
			return o
		}
	}
	return nil
}

func TestBuildCanary(t *testing.T) {
	objs, err := Build(canaryDesired(), "registry.example/shop", Config{Namespace: "shop-prod", Gateway: ParentRef{Name: "public", Namespace: "gateways"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 6 { // 2 Deployments, 2 version Services, the app Service, the HTTPRoute
		t.Fatalf("%d objects", len(objs))
	}
	dep := find(objs, "Deployment", "shop-1-5-0")
	if dep == nil {
		t.Fatal("no Deployment shop-1-5-0")
	}
	b, _ := json.Marshal(dep)
	for _, want := range []string{`"replicas":2`, `"image":"registry.example/shop@` + digest + `"`, `"airlock.dev/version":"1-5-0"`,
		`"app.kubernetes.io/managed-by":"airlock"`, `{"name":"A","value":"1"},{"name":"B","value":"2"}`, `"path":"/healthz"`, `"namespace":"shop-prod"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Deployment lacks %s: %s", want, b)
		}
	}
	route, _ := json.Marshal(find(objs, "HTTPRoute", "shop"))
	if !strings.Contains(string(route), `"backendRefs":[{"name":"shop-1-5-0","port":80,"weight":10},{"name":"shop-1-4-0","port":80,"weight":90}]`) ||
		!strings.Contains(string(route), `"parentRefs":[{"name":"public","namespace":"gateways"}]`) {
		t.Errorf("route %s", route)
	}
	svc, _ := json.Marshal(find(objs, "Service", "shop"))
	if strings.Contains(string(svc), "airlock.dev/version") {
		t.Errorf("with traffic: gateway the app Service selects every version: %s", svc)
	}
}

func TestBuildBlueGreenSwitchesTheServiceSelector(t *testing.T) {
	d := canaryDesired()
	d.Versions[0].Weight, d.Versions[1].Weight = 100, 0
	objs, err := Build(d, "registry.example/shop", Config{Namespace: "shop-prod", Traffic: TrafficService})
	if err != nil {
		t.Fatal(err)
	}
	if find(objs, "HTTPRoute", "shop") != nil {
		t.Error("traffic: service writes no HTTPRoute")
	}
	svc, _ := json.Marshal(find(objs, "Service", "shop"))
	if !strings.Contains(string(svc), `"airlock.dev/version":"1-5-0"`) {
		t.Errorf("the app Service does not select the version with all the traffic: %s", svc)
	}
}

func TestBuildRefuses(t *testing.T) {
	d := canaryDesired()
	if _, err := Build(d, "", Config{Namespace: "ns"}); err == nil || !strings.Contains(err.Error(), "image repository") {
		t.Errorf("no image: %v", err)
	}
	d.Runtime.SecretEnv = map[string]string{"DB": "DB_PASSWORD"}
	if _, err := Build(d, "r/shop", Config{Namespace: "ns"}); err == nil || !strings.Contains(err.Error(), "secretEnv") {
		t.Errorf("secretEnv: %v", err)
	}
	d = canaryDesired()
	d.Versions[0].Digest = "md5:abc"
	if _, err := Build(d, "r/shop", Config{Namespace: "ns"}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("digest: %v", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{"shop 1.4.0": "shop-1-4-0", "Shop_V2": "shop-v2"} {
		if got := Name(strings.Fields(in)...); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
	long := Name(strings.Repeat("a", 50), strings.Repeat("b", 50))
	if len(long) > 63 || long == Name(strings.Repeat("a", 50), strings.Repeat("b", 49)) {
		t.Errorf("long names: %q", long)
	}
}

func TestInCluster(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, err := InCluster(dir, getenv); err == nil || !strings.Contains(err.Error(), "does not run in a pod") {
		t.Fatalf("outside a pod: %v", err)
	}
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = "10.0.0.1", "443"
	if _, err := InCluster(dir, getenv); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("without a token: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "token"), []byte("tok\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a certificate"), 0o600)
	if _, err := InCluster(dir, getenv); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a bad CA: %v", err)
	}
}
