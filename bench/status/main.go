// Command status measures the status matrix (GET /api/v1/status, what
// `airlock status` shows) on PostgreSQL: it stores -apps applications ×
// -envs environments of current rollouts, each with a full status (50
// events), serves the API over loopback HTTP, and times -requests reads.
//
//	eval "$(.ci/start-postgres)"
//	go run ./bench/status [-apps 1000] [-envs 6] [-requests 50]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/server"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/postgres"
	"github.com/airlock-dev/airlock/internal/store/postgres/pgtest"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
)

func main() {
	apps := flag.Int("apps", 1000, "applications")
	envs := flag.Int("envs", 6, "environments")
	requests := flag.Int("requests", 50, "timed reads")
	flag.Parse()
	ctx := context.Background()
	dbURL, drop, err := freshDatabase()
	if err != nil {
		log.Fatal(err)
	}
	defer drop()
	st, err := postgres.Open(ctx, dbURL, sqlstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	dir, _ := os.MkdirTemp("", "airlock-status-")
	defer os.RemoveAll(dir)
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := auth.NewTokens(st).Bootstrap(ctx, dir); err != nil {
		log.Fatal(err)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, auth.AdminTokenFile))
	start := time.Now()
	seed(ctx, st, *apps, *envs)
	fmt.Printf("status matrix: %d applications x %d environments on PostgreSQL; seeded in %s; CPU %s, load %s\n",
		*apps, *envs, time.Since(start).Round(time.Millisecond), sysinfo.CPUModel(), sysinfo.LoadAvg())
	srv := httptest.NewServer(api.New(server.NewDeps(st, audit.NewSigner(key), nil, nil)))
	defer srv.Close()
	var took []time.Duration
	var size, rows int
	for i := range *requests + 5 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != 200 {
			log.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if i >= 5 { // warm-up
			took = append(took, d)
		}
		var out struct {
			Items []json.RawMessage `json:"items"`
		}
		json.Unmarshal(b, &out)
		size, rows = len(b), len(out.Items)
	}
	slices.Sort(took)
	q := func(f float64) time.Duration {
		return took[min(len(took)-1, int(f*float64(len(took))))].Round(100 * time.Microsecond)
	}
	fmt.Printf("GET /api/v1/status: %d rows, %d KiB; over %d requests: p50 %s, p90 %s, p99 %s, max %s\n",
		rows, size/1024, len(took), q(0.5), q(0.9), q(0.99), took[len(took)-1].Round(100*time.Microsecond))
}

// seed stores one current, finished rollout per application and
// environment, with a full status.
func seed(ctx context.Context, st store.Store, apps, envs int) {
	var events []rollout.Event
	for i := range 50 {
		events = append(events, rollout.Event{At: time.Now(), Message: fmt.Sprintf("step %d of 5: 20%% of traffic on 1.4.0 (a typical event line, about eighty bytes long)", i)})
	}
	for a := 0; a < apps; a += 50 {
		err := st.Write(ctx, store.Actor{Name: "bench"}, func(tx store.Tx) error {
			for app := a; app < min(apps, a+50); app++ {
				for e := range envs {
					name, env := fmt.Sprintf("app-%04d", app), fmt.Sprintf("env-%d", e)
					o := &resource.Object{APIVersion: resource.APIVersion, Kind: rollout.Kind, Metadata: resource.Metadata{
						Name:   name + "." + env + ".1",
						Labels: map[string]string{"app": name, "environment": env, "release": name + "-1.4.0", rollout.PhaseLabel: "Succeeded", rollout.CurrentLabel: "true"},
					}}
					o.SetSpec(rollout.Spec{App: name, Environment: env, Candidate: rollout.Version{Version: "1.4.0", Release: name + "-1.4.0", Digest: "sha256:" + strings.Repeat("ab", 32)},
						Stable: &rollout.Version{Version: "1.3.0", Release: name + "-1.3.0", Digest: "sha256:" + strings.Repeat("cd", 32)}, Replicas: 3})
					o.SetStatus(rollout.Status{Phase: rollout.Succeeded, Step: 5, Weight: 100, Message: "shop 1.4.0 serves 100% of traffic", Events: events})
					if _, err := tx.Create(ctx, o); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
}

// freshDatabase is an empty database on the server AIRLOCK_TEST_POSTGRES
// names, and the function that drops it.
func freshDatabase() (string, func(), error) {
	server := os.Getenv("AIRLOCK_TEST_POSTGRES")
	if server == "" {
		return "", nil, fmt.Errorf("set AIRLOCK_TEST_POSTGRES (eval \"$(.ci/start-postgres)\")")
	}
	u, drop, err := pgtest.Create(server, "airlock_status_")
	if err != nil {
		return "", nil, err
	}
	return u, func() { drop() }, nil
}
