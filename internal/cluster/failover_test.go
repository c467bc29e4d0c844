package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/cluster/replicas"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
)

// Three `airlock server` processes share one PostgreSQL database; the
// leader is killed with SIGKILL twice, and another replica must lead
// within 15 s each time, exactly one at a time. bench/failover runs the
// same over 20 kills.
func TestFailoverAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three airlock servers")
	}
	url := pgtest.FreshDatabase(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "airlock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/airlock-dev/airlock/cmd/airlock").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx := context.Background()
	set, err := replicas.Start(ctx, bin, url, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop()
	for kill := 1; kill <= 2; kill++ {
		leader, _, err := set.WaitLeader(ctx, 30*time.Second, "")
		if err != nil {
			t.Fatal(err)
		}
		rs, err := set.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, r := range rs {
			if r.Leader {
				leaders++
			}
		}
		if leaders != 1 || len(rs) < 3 {
			t.Fatalf("kill %d: status %+v: want 3 replicas, one leader", kill, rs)
		}
		p := set.ProcOf(leader)
		if p == nil {
			t.Fatalf("no process serves at the leader's address %s", leader.Address)
		}
		set.Kill(p)
		next, took, err := set.WaitLeader(ctx, 20*time.Second, leader.ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d: %s led; %s took over after %s", kill, leader.ID, next.ID, took.Round(10*time.Millisecond))
		if took > 15*time.Second {
			t.Errorf("kill %d: failover took %s, want at most 15s", kill, took)
		}
		log, _ := os.ReadFile(set.ProcOf(next).Log)
		if !strings.Contains(string(log), "took the leader lease; running the background loops") {
			t.Errorf("the new leader's log does not show its loops starting:\n%s", log)
		}
		if err := set.Restart(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	// An access that expires while its leader is dead is revoked by the
	// next leader, once: the broker's revoke runs exactly one time.
	cli := func(token string, args ...string) string {
		t.Helper()
		out, err := set.Run(token, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	revoked := filepath.Join(dir, "revoked")
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	grant := script("grant.sh", `printf '{"credential": {"token": "t"}, "handle": "h-%s"}' "$AIRLOCK_ACCESS_ID"`)
	revoke := script("revoke.sh", `echo "$AIRLOCK_ACCESS_HANDLE" >> `+revoked)
	res := filepath.Join(dir, "resource.yaml")
	os.WriteFile(res, []byte(fmt.Sprintf(`apiVersion: airlock.dev/v1
kind: AccessResource
metadata: {name: orders-db}
spec:
  environment: prod
  broker: {type: exec, config: {grant: [%s], revoke: [%s]}}
  roles:
    readonly: {approvals: {sre: 1}}
`, grant, revoke)), 0o644)
	cli(set.Token, "apply", "-f", "../../examples/quickstart.yaml")
	cli(set.Token, "apply", "-f", res)
	alice := cli(set.Token, "token", "create", "alice", "--role", "sre")
	oncall := cli(set.Token, "token", "create", "oncall", "--role", "sre")
	id := strings.TrimPrefix(cli(alice, "access", "request", "--env", "prod", "--resource", "orders-db", "--role", "readonly", "--for", "1m", "--reason", "check the stuck orders", "-o", "name"), "accessrequest/")
	cli(oncall, "access", "approve", id, "--reason", "on call, looks right")
	leader, _, err := set.WaitLeader(ctx, 30*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	set.Kill(set.ProcOf(leader))
	expires := time.Now().Add(time.Minute)
	for {
		var st struct {
			Status struct {
				State string `json:"state"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(cli(set.Token, "get", "accessrequests", id, "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		if st.Status.State == "expired" {
			break
		}
		if time.Now().After(expires.Add(20 * time.Second)) {
			t.Fatalf("access %s is %s 20s after it should have expired", id, st.Status.State)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a second revocation would come now
	b, _ := os.ReadFile(revoked)
	if got := strings.TrimSpace(string(b)); got != "h-"+id {
		t.Fatalf("revoke ran with %q, want exactly once for h-%s", got, id)
	}
}
