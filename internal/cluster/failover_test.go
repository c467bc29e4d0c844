package cluster_test

import (
	"context"
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
}
