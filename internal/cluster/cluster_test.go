package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/cluster"
	"github.com/airlock-dev/airlock/internal/store/postgres"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

// databases opens the shared database of a test in each dialect.
func databases(t *testing.T) map[string]func(t *testing.T) *cluster.DB {
	return map[string]func(t *testing.T) *cluster.DB{
		"sqlite": func(t *testing.T) *cluster.DB {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			db, err := cluster.NewDB(st.DB(), "sqlite")
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		"postgres": func(t *testing.T) *cluster.DB {
			st, err := postgres.Open(context.Background(), pgtest.FreshDatabase(t), sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			db, err := cluster.NewDB(st.DB(), "postgres")
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
	}
}

func TestLease(t *testing.T) {
	for name, open := range databases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			held, since, err := db.Acquire(ctx, "l", "a", 300*time.Millisecond)
			if err != nil || !held || since.IsZero() {
				t.Fatalf("a takes a free lease: %v %v %v", held, since, err)
			}
			if held, _, _ := db.Acquire(ctx, "l", "b", 300*time.Millisecond); held {
				t.Fatal("b took a lease a holds")
			}
			held, again, err := db.Acquire(ctx, "l", "a", 300*time.Millisecond)
			if err != nil || !held || !again.Equal(since) {
				t.Fatalf("a renews: %v %v (since %v, first %v)", held, err, again, since)
			}
			time.Sleep(400 * time.Millisecond)
			held, bSince, err := db.Acquire(ctx, "l", "b", time.Second)
			if err != nil || !held || !bSince.After(since) {
				t.Fatalf("b takes the expired lease: %v %v %v", held, bSince, err)
			}
			if held, _, _ := db.Acquire(ctx, "l", "a", time.Second); held {
				t.Fatal("a took the lease back from b")
			}
			if err := db.Release(ctx, "l", "a"); err != nil {
				t.Fatal(err)
			}
			if held, _, _ := db.Acquire(ctx, "l", "c", time.Second); held {
				t.Fatal("a's release freed b's lease")
			}
			if err := db.Release(ctx, "l", "b"); err != nil {
				t.Fatal(err)
			}
			if held, _, _ := db.Acquire(ctx, "l", "c", time.Second); !held {
				t.Fatal("c could not take a released lease")
			}
		})
	}
}

// member is one replica in a test: its leader work counts how often it
// is the leader, and fails the test when two lead at once.
type member struct {
	m      *cluster.Member
	cancel context.CancelFunc
	done   chan struct{}
}

func TestOneLeaderAndFailover(t *testing.T) {
	for name, open := range databases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			const ttl, renew = 600 * time.Millisecond, 100 * time.Millisecond
			var leading atomic.Int32
			var mu sync.Mutex
			var twice bool
			lead := func(ctx context.Context) {
				if leading.Add(1) > 1 {
					mu.Lock()
					twice = true
					mu.Unlock()
				}
				<-ctx.Done()
				leading.Add(-1)
			}
			start := func(i int) *member {
				ctx, cancel := context.WithCancel(context.Background())
				m := &member{cancel: cancel, done: make(chan struct{}),
					m: &cluster.Member{DB: db, Replica: cluster.Replica{ID: fmt.Sprintf("r%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 8640+i), Version: "test"}, TTL: ttl, Renew: renew}}
				go func() { defer close(m.done); m.m.Run(ctx, lead) }()
				return m
			}
			members := []*member{start(1), start(2), start(3)}
			defer func() {
				for _, m := range members {
					m.cancel()
					<-m.done
				}
			}()
			leader := func() *member {
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					var got []*member
					for _, m := range members {
						if m.m.IsLeader() {
							got = append(got, m)
						}
					}
					if len(got) == 1 {
						return got[0]
					}
					time.Sleep(10 * time.Millisecond)
				}
				t.Fatal("no single leader within 5s")
				return nil
			}
			first := leader()
			var rs []cluster.Replica
			var err error
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if rs, err = db.Replicas(context.Background(), cluster.Alive); err == nil && len(rs) == 3 {
					break
				}
			}
			if err != nil || len(rs) != 3 {
				t.Fatalf("replicas %+v %v", rs, err)
			}
			for _, r := range rs {
				if r.Leader != (r.ID == first.m.Replica.ID) || r.Address == "" {
					t.Errorf("replica %+v (leader is %s)", r, first.m.Replica.ID)
				}
			}
			// A clean stop hands over at once.
			began := time.Now()
			first.cancel()
			<-first.done
			second := leader()
			if d := time.Since(began); d > ttl {
				t.Errorf("a clean handover took %s, want less than the lease's %s", d, ttl)
			}
			rs, _ = db.Replicas(context.Background(), cluster.Alive)
			if len(rs) != 2 {
				t.Errorf("after leaving: %+v", rs)
			}
			mu.Lock()
			defer mu.Unlock()
			if twice {
				t.Fatal("two replicas led at once")
			}
			_ = second
		})
	}
}
