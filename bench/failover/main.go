// Command failover measures leader failover: it starts -replicas airlock
// servers on one PostgreSQL database, kills the leader with SIGKILL -kills
// times (restarting it each time), and reports how long the others took
// to have a new leader, from the kill to the first status that shows one.
//
//	eval "$(.ci/start-postgres)"
//	go run ./bench/failover [-kills 20] [-replicas 3] [-database URL]
//
// The database defaults to a fresh one on the server AIRLOCK_TEST_POSTGRES
// names; it is dropped at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
	"github.com/airlock-dev/airlock/internal/cluster/replicas"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
)

func main() {
	kills := flag.Int("kills", 20, "how often to kill the leader")
	n := flag.Int("replicas", 3, "airlock servers")
	dbURL := flag.String("database", "", "PostgreSQL URL (default: a fresh database on $AIRLOCK_TEST_POSTGRES)")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "airlock-failover-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if *dbURL == "" {
		u, drop, err := freshDatabase()
		if err != nil {
			log.Fatal(err)
		}
		defer drop()
		*dbURL = u
	}
	bin := filepath.Join(dir, "airlock")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/airlock").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	set, err := replicas.Start(ctx, bin, *dbURL, dir, *n)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Stop()
	fmt.Printf("failover: %d replicas, %d kills; CPU %s, load %s\n", *n, *kills, sysinfo.CPUModel(), sysinfo.LoadAvg())
	var took []time.Duration
	for i := 1; i <= *kills; i++ {
		leader, _, err := set.WaitLeader(ctx, 30*time.Second, "")
		if err != nil {
			log.Fatal(err)
		}
		p := set.ProcOf(leader)
		set.Kill(p)
		next, d, err := set.WaitLeader(ctx, 60*time.Second, leader.ID)
		if err != nil {
			log.Fatal(err)
		}
		took = append(took, d)
		fmt.Printf("kill %2d: %s -> %s in %s\n", i, leader.ID, next.ID, d.Round(10*time.Millisecond))
		if err := set.Restart(ctx, p); err != nil {
			log.Fatal(err)
		}
	}
	slices.Sort(took)
	q := func(f float64) time.Duration {
		return took[min(len(took)-1, int(f*float64(len(took))))].Round(10 * time.Millisecond)
	}
	within := 0
	for _, d := range took {
		if d <= 15*time.Second {
			within++
		}
	}
	fmt.Printf("failover over %d kills: min %s, median %s, p90 %s, max %s; within 15 s: %d of %d\n",
		len(took), q(0), q(0.5), q(0.9), took[len(took)-1].Round(10*time.Millisecond), within, len(took))
}

// freshDatabase is an empty database on the server AIRLOCK_TEST_POSTGRES
// names, and the function that drops it.
func freshDatabase() (string, func(), error) {
	server := os.Getenv("AIRLOCK_TEST_POSTGRES")
	if server == "" {
		return "", nil, fmt.Errorf("set AIRLOCK_TEST_POSTGRES (eval \"$(.ci/start-postgres)\")")
	}
	u, drop, err := pgtest.Create(server, "airlock_failover_")
	if err != nil {
		return "", nil, err
	}
	return u, func() { drop() }, nil
}
