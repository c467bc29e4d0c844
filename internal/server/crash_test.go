package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/runtime/local"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAirlock runs `airlock server` as its own process.
func startAirlock(t *testing.T, bin, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "server", "--data", dir, "--listen", addr)
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("airlock did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGKILLMidRollout kills airlock with SIGKILL while a canary holds
// half the traffic. The instances survive; the next airlock adopts them,
// brings the router back on its address with the weights of the status,
// and the rollout carries on when resumed.
func TestSIGKILLMidRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds airlock and runs it as a process")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "airlock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/airlock-dev/airlock/cmd/airlock").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	t.Cleanup(func() {
		sup, err := local.New(local.Options{Dir: filepath.Join(data, "runtime")})
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			sup.StopAll(sctx)
			sup.Close()
		}
	})
	api, shop := freeAddr(t), freeAddr(t)
	srv := startAirlock(t, bin, data, api)
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	c, err := client.New("http://"+api, strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, isolation: {level: labels, network: dev-net, credentials: dev-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec: {tier: production, data: production, isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: one machine}}}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec: {stages: [{environment: dev}, {environment: prod}]}
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
      listen: "%s"
      args: [demo-app]
      strategy: {type: canary, steps: [{weight: 50, pause: manual}, {weight: 100}]}
`, shop)
	if _, err := c.Apply(ctx, "test.yaml", []byte(doc), "application/yaml", false); err != nil {
		t.Fatal(err)
	}
	self, _ := os.ReadFile(bin)
	release := func(version string) {
		b := append(append([]byte(nil), self...), []byte("\n#"+version+"\n")...)
		sum := sha256.Sum256(b)
		digest := "sha256:" + hex.EncodeToString(sum[:])
		rel, err := c.CreateRelease(ctx, client.ReleaseRequest{App: "shop", Version: version, Artifact: client.Artifact{Digest: digest}, Commit: "9f2c1e7"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.UploadArtifact(ctx, rel.Metadata.Name, strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Promote(ctx, client.PromotionRequest{App: "shop", Version: version, To: "dev"}); err != nil {
			t.Fatal(err)
		}
	}
	waitPhase := func(want rollout.Phase) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if o, err := c.CurrentRollout(ctx, "shop", "dev"); err == nil {
				if _, st, _ := rollout.Decode(o); st.Phase == want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the rollout did not reach %s", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	served := func(n int) map[string]int {
		out := map[string]int{}
		hc := &http.Client{Timeout: 2 * time.Second}
		for range n {
			resp, err := hc.Get("http://" + shop + "/")
			if err != nil {
				out["error"]++
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out[strings.TrimSpace(strings.TrimPrefix(string(b), "version "))]++
		}
		return out
	}

	release("1.0.0")
	waitPhase(rollout.Succeeded)
	release("1.1.0")
	waitPhase(rollout.Paused)
	if got := served(100); got["1.0.0"] < 30 || got["1.1.0"] < 30 || got["error"] > 0 {
		t.Fatalf("at the 50%% step: %v", got)
	}

	// SIGKILL: no clean stop, no last checkpoint.
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	if got := served(1); got["error"] != 1 {
		t.Fatalf("the router outlived airlock: %v", got)
	}
	srv = startAirlock(t, bin, data, api)
	deadline := time.Now().Add(15 * time.Second)
	for served(1)["error"] == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the router did not come back after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := served(100); got["1.0.0"] < 30 || got["1.1.0"] < 30 || got["error"] > 0 {
		t.Fatalf("after the restart the split is not the status's 50%%: %v", got)
	}
	waitPhase(rollout.Paused)

	if _, err := c.RolloutCommand(ctx, "shop", "dev", "resume", ""); err != nil {
		t.Fatal(err)
	}
	waitPhase(rollout.Succeeded)
	if got := served(30); got["1.1.0"] != 30 {
		t.Fatalf("after the resume: %v", got)
	}
	if res, err := c.AuditVerify(ctx); err != nil || !res.OK {
		t.Fatalf("audit after a SIGKILL: %v %+v", err, res)
	}
}
