// Command store measures airlock's object store on a real database: the
// audit append rate it sustains under an open-loop load and its latency,
// or the time to list releases by label. It prints one line per run.
//
//	go run ./bench/store -store sqlite -rate 5000 -duration 10s
//	go run ./bench/store -store postgres -dsn postgres://... -rate 5000 -duration 10s
//	go run ./bench/store -store sqlite -mode list
//
// See bench/README.md for what the figures mean and how to get a durable
// PostgreSQL to run them against.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
	"github.com/airlock-dev/airlock/internal/gctune"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/postgres"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/store/storetest"

	_ "github.com/jackc/pgx/v5/stdlib"
	msqlite "modernc.org/sqlite"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/store:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		kind     = flag.String("store", "sqlite", "store to measure: sqlite, postgres, file (the machine's floor: group-committed records in a plain file, see floor.go) or postgres-floor (the same into a PostgreSQL table with no index)")
		mode     = flag.String("mode", "append", "append (open-loop creates) or list (10,000 of 20,000 releases by label)")
		rate     = flag.Float64("rate", 5000, "append: creates offered per second")
		duration = flag.Duration("duration", 10*time.Second, "append: how long the load is measured")
		warmup   = flag.Duration("warmup", time.Second, "append: load offered before measuring")
		workers  = flag.Int("workers", 512, "append: most requests in flight at once")
		lists    = flag.Int("n", 20, "list: how many lists to time")
		dir      = flag.String("dir", "", "sqlite: directory for the database file (default a new temporary directory)")
		cpuprof  = flag.String("cpuprofile", "", "write this process's CPU profile of the measured part to this file")
		memprof  = flag.String("memprofile", "", "write this process's allocation profile (all allocations since start) to this file")
		stalls   = flag.Duration("stalls", 2*time.Second, "append: spin on every CPU this long before the run to measure how often the CPUs stall (0: skip)")
		latFile  = flag.String("latencies", "", "append: write every measured request to this file, a line each: its scheduled time from the start of the measurement and its latency, in µs")
		ckptEach = flag.Duration("checkpoint-every", 0, fmt.Sprintf("sqlite: time between background WAL checkpoints (0: the store's default, %s)", sqlite.Dialect().CheckpointEvery))
		ckptRst  = flag.Int("checkpoint-restart", 0, fmt.Sprintf("sqlite: WAL frames at which the writer makes the WAL start over (0: the store's default, %d)", sqlite.Dialect().CheckpointRestart))
		op       = flag.String("op", "create", "append, sqlite and postgres: what each request writes: create (a Release object with a label, and its audit entry: one mutation) or record (an audit entry alone, as airlock writes for a refused request)")
		maxBatch = flag.Int("max-batch", 0, "sqlite, postgres: most writes the writer commits in one transaction (0: the store's default, 256)")
		readers  = flag.Int("readers", 0, "append: goroutines that read beside the writes, each one Get every -read-every")
		readEach = flag.Duration("read-every", time.Millisecond, "append: pause between one reader's Gets")
		dsn      = flag.String("dsn", os.Getenv("AIRLOCK_BENCH_POSTGRES"), "postgres: server URL; a scratch database is created on it and dropped after (default $AIRLOCK_BENCH_POSTGRES)")
	)
	flag.Parse()
	ctx := context.Background()
	gogc := gctune.Apply() // as the airlock binary does

	ws := &writerStats{}
	opts := sqlstore.Options{ObserveBatch: ws.observe, CheckpointEvery: *ckptEach, CheckpointRestart: *ckptRst, MaxBatch: *maxBatch}
	var (
		st         *sqlstore.Store
		floor      *groupLog
		durability string
		serverCPU  func() (time.Duration, bool) // the database server's CPU time, when it is a local PostgreSQL
		err        error
	)
	if (*kind == "file" || *kind == "postgres-floor") && *mode != "append" {
		return fmt.Errorf("-store %s measures appends only (-mode append)", *kind)
	}
	switch *kind {
	case "sqlite":
		d, cleanup, err := benchDir(*dir)
		if err != nil {
			return err
		}
		defer cleanup()
		if st, err = sqlite.Open(ctx, filepath.Join(d, "airlock.db"), opts); err != nil {
			return err
		}
		var sync int
		if err := st.DB().QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			return err
		}
		durability = fmt.Sprintf("synchronous=%d fdatasync=%t", sync, msqlite.FdatasyncEnabled())
	case "postgres":
		db, drop, err := scratchDatabase(ctx, *dsn)
		if err != nil {
			return err
		}
		defer drop()
		if st, err = postgres.Open(ctx, db, opts); err != nil {
			return err
		}
		if durability, err = postgresDurability(ctx, st.DB()); err != nil {
			return err
		}
		serverCPU = postgresCPU(ctx, st.DB())
	case "file":
		d, cleanup, err := benchDir(*dir)
		if err != nil {
			return err
		}
		defer cleanup()
		if floor, err = openFileLog(filepath.Join(d, "floor.log"), 64<<20, ws.observe); err != nil {
			return err
		}
		defer floor.Close()
		durability = "fdatasync=true ring=64MB"
	case "postgres-floor":
		db, drop, err := scratchDatabase(ctx, *dsn)
		if err != nil {
			return err
		}
		defer drop()
		pdb, err := sql.Open("pgx", db)
		if err != nil {
			return err
		}
		defer pdb.Close()
		if durability, err = postgresDurability(ctx, pdb); err != nil {
			return err
		}
		serverCPU = postgresCPU(ctx, pdb)
		if floor, err = openPostgresLog(ctx, db, ws.observe); err != nil {
			return err
		}
		defer floor.Close()
	default:
		return fmt.Errorf("-store %q: want sqlite, postgres, file or postgres-floor", *kind)
	}
	if st != nil {
		defer st.Close()
	}

	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	if *memprof != "" {
		defer func() {
			if err := writeHeapProfile(*memprof); err != nil {
				fmt.Fprintln(os.Stderr, "bench/store:", err)
			}
		}()
	}

	switch *mode {
	case "append":
		var st0 sysinfo.Stalls
		if *stalls > 0 {
			st0 = sysinfo.MeasureStalls(*stalls, 200*time.Microsecond)
		}
		cpu0 := cpuTime()
		var srv0 time.Duration
		if serverCPU != nil {
			srv0, _ = serverCPU()
		}
		ws.reset()
		stopReads := startReaders(ctx, st, *readers, *readEach)
		defer stopReads()
		cfg := storetest.SustainedConfig{Rate: *rate, Duration: *duration, Warmup: *warmup, Workers: *workers}
		var res storetest.SustainedResult
		switch {
		case floor != nil:
			*op = "record" // the floor's records are audit entries alone
			res, err = storetest.SustainedFunc(ctx, cfg, floor.Append)
		case *op == "create":
			res, err = storetest.Sustained(ctx, st, cfg)
		case *op == "record":
			res, err = storetest.SustainedFunc(ctx, cfg, func(ctx context.Context, i int) error {
				return st.Write(ctx, store.Actor{Name: "ci"}, func(tx store.Tx) error {
					return tx.Record(ctx, "refused-promote", "Release", "shop-"+strconv.Itoa(i), "")
				})
			})
		default:
			return fmt.Errorf("-op %q: want create or record", *op)
		}
		if err != nil {
			return err
		}
		// CPU time of this process (client and, for SQLite, the database
		// itself) per create, warm-up included: a figure that other load on
		// the machine moves far less than latency.
		issued := time.Duration(*rate * (*warmup + *duration).Seconds())
		perEntry := (cpuTime() - cpu0) / issued
		server := ""
		if serverCPU != nil {
			if srv1, ok := serverCPU(); ok {
				server = " server-cpu/entry=" + ((srv1 - srv0) / issued).Round(100*time.Nanosecond).String()
			}
		}
		fmt.Printf("store=%s %s gogc=%d mode=append op=%s duration=%s %s cpu/entry=%s%s kept=%t\n", *kind, durability, gogc, *op, *duration, res, perEntry.Round(100*time.Nanosecond), server, res.Kept())
		fmt.Printf("  writer: %s\n", ws)
		if st0.CPUs > 0 {
			fmt.Printf("  machine before the run: %s\n", st0)
		}
		if *latFile != "" {
			if err := writeLatencies(*latFile, res); err != nil {
				return err
			}
		}
	case "list":
		if err := storetest.SeedList(ctx, st); err != nil {
			return err
		}
		sel := resource.Selector{{Key: "app", Op: resource.Equals, Values: []string{"shop"}}}
		times := make([]time.Duration, *lists)
		cpu0 := cpuTime()
		var srv0 time.Duration
		if serverCPU != nil {
			srv0, _ = serverCPU()
		}
		for i := range times {
			t0 := time.Now()
			objs, err := st.List(ctx, "Release", sel)
			times[i] = time.Since(t0)
			if err != nil {
				return err
			}
			if len(objs) != 10000 {
				return fmt.Errorf("listed %d releases, want 10000", len(objs))
			}
		}
		// CPU time per list, as for append: this process's, and the
		// server's when it is a local PostgreSQL.
		cpu := ((cpuTime() - cpu0) / time.Duration(*lists)).Round(10 * time.Microsecond)
		server := ""
		if serverCPU != nil {
			if srv1, ok := serverCPU(); ok {
				server = " server-cpu/list=" + ((srv1 - srv0) / time.Duration(*lists)).Round(10*time.Microsecond).String()
			}
		}
		slices.Sort(times)
		fmt.Printf("store=%s mode=list objects=10000/20000 n=%d min=%s median=%s max=%s cpu/list=%s%s\n",
			*kind, *lists, times[0].Round(10*time.Microsecond), times[len(times)/2].Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond), cpu, server)
	default:
		return fmt.Errorf("-mode %q: want append or list", *mode)
	}
	return nil
}

// writeLatencies writes each request's scheduled time (from the start of
// the measurement) and latency, in µs, a line each: to find when the slow
// ones came, e.g. whether they cluster at the checkpoints.
func writeLatencies(path string, res storetest.SustainedResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, l := range res.Latencies {
		fmt.Fprintf(w, "%d %d\n", (time.Duration(i) * res.Interval).Microseconds(), l.Microseconds())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeHeapProfile writes the allocation profile (go tool pprof
// -sample_index=alloc_space shows where the bytes were allocated).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgresDurability says whether the server at db acknowledges commits
// only once they are on disk: its fsync and synchronous_commit settings.
func postgresDurability(ctx context.Context, db *sql.DB) (string, error) {
	var fsync, syncCommit string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		return "", err
	}
	return "fsync=" + fsync + ",synchronous_commit=" + syncCommit, nil
}

// postgresCPU returns a function that reads the CPU time used so far by a
// PostgreSQL server running on this machine: the postmaster, its live
// children (backends, WAL writer, checkpointer, ...) and its children that
// have exited. It returns nil when the server's processes cannot be read
// (a remote server, or no access to its data directory or /proc).
func postgresCPU(ctx context.Context, db *sql.DB) func() (time.Duration, bool) {
	var dataDir string
	if err := db.QueryRowContext(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil
	}
	read := func() (time.Duration, bool) {
		f, ok := procStat(pm)
		if !ok {
			return 0, false
		}
		// utime, stime, cutime, cstime of the postmaster.
		ticks := f[11] + f[12] + f[13] + f[14]
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return 0, false
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == pm {
				continue
			}
			if c, ok := procStat(pid); ok && c[1] == int64(pm) {
				ticks += c[11] + c[12]
			}
		}
		return time.Duration(ticks) * time.Second / clockTicks, true
	}
	if _, ok := read(); !ok {
		return nil
	}
	return read
}

// clockTicks is the unit of the times in /proc/PID/stat (USER_HZ), 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procStat returns the numeric fields of /proc/pid/stat after the command
// name, from state onwards: index 1 is the parent pid, 11 to 14 utime,
// stime, cutime and cstime. Non-numeric fields read as 0.
func procStat(pid int) ([]int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 15 {
		return nil, false
	}
	out := make([]int64, len(fields))
	for j, f := range fields {
		out[j], _ = strconv.ParseInt(f, 10, 64)
	}
	return out, true
}

// scratchDatabase creates an empty database on the server at server and
// returns its URL and a function that drops it.
func scratchDatabase(ctx context.Context, server string) (string, func(), error) {
	if server == "" {
		return "", nil, fmt.Errorf("a PostgreSQL store needs -dsn or AIRLOCK_BENCH_POSTGRES (see bench/README.md)")
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	name := "airlock_bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	drop := func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "bench/store: drop scratch database %s: %v\n", name, err)
		}
	}
	u, err := url.Parse(server)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// writerStats collects the store writer's batches: how many writes each
// held, how long each cycle took (run, flush, commit) and its commit alone.
// It tells the store's own latency from the disk's.
type writerStats struct {
	mu             sync.Mutex
	writes         int
	cycles, commit []time.Duration
}

func (w *writerStats) observe(writes int, cycle, commit time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes += writes
	w.cycles = append(w.cycles, cycle)
	w.commit = append(w.commit, commit)
}

func (w *writerStats) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes, w.cycles, w.commit = 0, nil, nil
}

func (w *writerStats) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.cycles)
	if n == 0 {
		return "no batches"
	}
	q := func(d []time.Duration) string {
		d = slices.Clone(d)
		slices.Sort(d)
		r := func(x time.Duration) time.Duration { return x.Round(10 * time.Microsecond) }
		return fmt.Sprintf("p50=%s p99=%s max=%s", r(d[n/2]), r(d[n*99/100]), r(d[n-1]))
	}
	return fmt.Sprintf("batches=%d writes/batch=%.1f cycle %s; commit %s", n, float64(w.writes)/float64(n), q(w.cycles), q(w.commit))
}

// startReaders starts n goroutines that each Get a Release every pause
// until the returned function is called: reads on the pool beside the
// writer, as a server's API and watches make them.
func startReaders(ctx context.Context, st *sqlstore.Store, n int, pause time.Duration) (stop func()) {
	if st == nil || n <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, _ = st.Get(ctx, "Release", fmt.Sprintf("shop-%d-%d", r, i))
				time.Sleep(pause)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// benchDir returns dir, or a new temporary directory (removed by cleanup)
// when dir is empty.
func benchDir(dir string) (d string, cleanup func(), err error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	if d, err = os.MkdirTemp("", "airlock-bench-"); err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}
