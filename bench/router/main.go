// Command router measures airlock's built-in router on loopback against
// direct connections and against nginx with the same weighted upstreams.
//
//	go run ./bench/router [-duration 60s] [-rate 2000] [-weights 90,10] ...
//
// It runs three kinds of process, all on 127.0.0.1: the backends (this
// program re-executed with -role backend), the router (re-executed with
// -role router) and nginx; the load generator is this process. Phases:
//
//  1. latency: open-loop at -rate req/s, direct to the backends and through
//     the router; latency is measured from each request's scheduled start,
//     so a stall shows in the tail (no coordinated omission);
//  2. throughput: closed loop with -conns connections, router vs nginx, with
//     this program's Go load generator and with wrk when it is installed;
//  3. flip: weights change every -flip (100ms) for -duration under load;
//     every failed request is counted;
//  4. split: -split requests through the router, counted per version.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
	"github.com/airlock-dev/airlock/internal/gctune"
	"github.com/airlock-dev/airlock/internal/router"
)

var versions = []string{"1.0.0", "1.1.0"}

func main() {
	role := flag.String("role", "", "internal: backend or router (the harness re-executes itself)")
	// backend and router roles
	backendVersions := flag.String("versions", "", "internal: versions of the backends to start, comma-separated")
	bodySize := flag.Int("body", 128, "response body size of the backends in bytes")
	pools := flag.String("pools", "", "internal: router pools as version=weight:addr,addr;...")
	flip := flag.Duration("flip", 100*time.Millisecond, "interval of weight changes in the flip phase")
	flipOn := flag.Bool("flipping", false, "internal: the router changes its weights every -flip")
	cpuProfile := flag.String("router-cpuprofile", "", "write a CPU profile of the router process to this file")
	stallsDur := flag.Duration("stalls", 2*time.Second, "spin on every CPU this long before the run to measure how often the CPUs stall (0: skip)")
	routerProcs := flag.Int("router-gomaxprocs", 0, "GOMAXPROCS of the router process (0: the Go default, all CPUs)")
	// harness
	backends := flag.Int("backends", 4, "backend instances (split evenly over two versions)")
	weights := flag.String("weights", "90,10", "weights of the two versions, in percent")
	rate := flag.Int("rate", 2000, "open-loop request rate of the latency phase (req/s)")
	latencyDur := flag.Duration("latency-duration", 10*time.Second, "measured time of each latency run")
	tputDur := flag.Duration("throughput-duration", 10*time.Second, "measured time of each throughput run")
	conns := flag.Int("conns", 64, "concurrent connections of the throughput and flip phases")
	rounds := flag.Int("rounds", 2, "throughput rounds, router and nginx alternating; the best of each counts")
	duration := flag.Duration("duration", 60*time.Second, "length of the flip phase")
	split := flag.Int("split", 100_000, "requests of the split phase")
	phases := flag.String("phases", "latency,throughput,flip,split", "phases to run")
	nginxBin := flag.String("nginx", "", "nginx binary (default: nginx from PATH, /usr/sbin/nginx)")
	nginxWorkers := flag.Int("nginx-workers", 0, "nginx worker_processes (0: as many as the router's GOMAXPROCS)")
	reuseport := flag.Bool("nginx-reuseport", true, "listen with reuseport, so the kernel spreads connections over the nginx workers")
	flag.Parse()

	switch *role {
	case "backend":
		runBackends(strings.Split(*backendVersions, ","), *bodySize)
		return
	case "router":
		runRouter(*pools, *flipOn, *flip, *cpuProfile)
		return
	case "":
	default:
		log.Fatalf("unknown -role %q", *role)
	}

	w, err := parseWeights(*weights)
	if err != nil {
		log.Fatal(err)
	}
	h := &harness{
		backends: *backends, weights: w, rate: *rate, latencyDur: *latencyDur,
		tputDur: *tputDur, conns: *conns, rounds: *rounds, duration: *duration,
		flip: *flip, split: *split, bodySize: *bodySize, nginxBin: *nginxBin,
		phases: strings.Split(*phases, ","), cpuProfile: *cpuProfile, routerProcs: *routerProcs,
		nginxWorkers: *nginxWorkers, reuseport: *reuseport, stallsDur: *stallsDur,
	}
	if err := h.run(); err != nil {
		log.Fatal(err)
	}
}

func parseWeights(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return nil, fmt.Errorf("-weights %q: want two weights like 90,10", s)
	}
	var w []int
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("-weights %q: %v", s, err)
		}
		w = append(w, n)
	}
	if w[0]+w[1] != 100 {
		return nil, fmt.Errorf("-weights %q: must sum to 100", s)
	}
	return w, nil
}

// ---- backend role ----

func runBackends(vs []string, bodySize int) {
	var addrs []string
	for _, v := range vs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		body := []byte(strings.Repeat("x", bodySize))
		vh := []string{v}
		ct := []string{"text/plain"}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["X-Version"] = vh
			h["Content-Type"] = ct
			w.Write(body)
		})}
		go srv.Serve(ln)
	}
	fmt.Println("ready", strings.Join(addrs, ","))
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin (or dies)
}

// ---- router role ----

func runRouter(spec string, flipping bool, every time.Duration, cpuProfile string) {
	gctune.Apply() // the router runs in the airlock binary, which does this
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cfg := router.Config{
		HealthCheck: router.HealthCheck{Path: "/healthz", Interval: time.Second},
	}
	for _, p := range strings.Split(spec, ";") {
		v, rest, _ := strings.Cut(p, "=")
		w, list, _ := strings.Cut(rest, ":")
		n, err := strconv.Atoi(w)
		if err != nil {
			log.Fatalf("-pools %q: %v", spec, err)
		}
		cfg.Pools = append(cfg.Pools, router.Pool{Version: v, Weight: n, Instances: strings.Split(list, ",")})
	}
	r := router.New(router.Options{App: "bench", Environment: "loopback"})
	if err := r.Update(cfg); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		all := true
		for _, h := range r.Health() {
			all = all && h.Available
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			log.Fatal("router: instances did not become healthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go r.Serve(ln)
	var flips atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	if flipping {
		go func() {
			rng := rand.New(rand.NewPCG(7, 11))
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				w := []int{0, 1, 5, 10, 25, 50, 75, 90, 99, 100}[rng.IntN(10)]
				c := cfg
				c.Pools = slices.Clone(cfg.Pools)
				c.Pools[0].Weight, c.Pools[1].Weight = 100-w, w
				if err := r.Update(c); err != nil {
					log.Fatal(err)
				}
				flips.Add(1)
			}
		}()
	}
	fmt.Println("ready", ln.Addr().String())
	// Run until stdin closes (the harness ends) or SIGTERM.
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-eof:
	case <-sig:
	}
	cancel()
	var errs uint64
	for _, s := range r.Metrics() {
		errs += s.Errors
	}
	fmt.Printf("flips %d errors %d\n", flips.Load(), errs)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	r.Shutdown(sctx)
}

// ---- harness ----

type harness struct {
	backends     int
	weights      []int
	rate         int
	latencyDur   time.Duration
	tputDur      time.Duration
	conns        int
	rounds       int
	duration     time.Duration
	flip         time.Duration
	split        int
	bodySize     int
	nginxBin     string
	nginxWorkers int
	reuseport    bool
	phases       []string
	cpuProfile   string
	routerProcs  int

	addrs   []string // backend addresses
	version []string // version of each backend

	latency    map[string][]latencyResult
	tput       map[string]tputResult
	wrk        map[string]tputResult
	routerPID  int
	backendPID int
	nginxURL   string
	nginxConf  string
	nginxPID   int
	loadStart  string
	stallsDur  time.Duration
	stalls     sysinfo.Stalls
	flipRes    *loadResult
	flipInfo   string
	splitRes   *loadResult
}

func (h *harness) has(phase string) bool { return slices.Contains(h.phases, phase) }

func (h *harness) run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h.latency = map[string][]latencyResult{}
	h.tput = map[string]tputResult{}
	h.wrk = map[string]tputResult{}
	h.loadStart = sysinfo.LoadAvg()
	if h.stallsDur > 0 {
		h.stalls = sysinfo.MeasureStalls(h.stallsDur, 200*time.Microsecond)
	}

	fmt.Fprintf(os.Stderr, "machine: %d CPUs (%s), %s %s/%s\n", runtime.NumCPU(), sysinfo.CPUModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var vs []string
	for i := range h.backends {
		vs = append(vs, versions[i*2/h.backends])
	}
	h.version = vs
	be, out, err := spawn("-role", "backend", "-versions", strings.Join(vs, ","), "-body", strconv.Itoa(h.bodySize))
	if err != nil {
		return fmt.Errorf("start backends: %w", err)
	}
	defer be.stop()
	h.backendPID = be.cmd.Process.Pid
	h.addrs = strings.Split(out, ",")
	fmt.Fprintf(os.Stderr, "backends: %v %v\n", h.addrs, vs)

	args := []string{"-role", "router", "-pools", h.poolSpec()}
	if h.cpuProfile != "" {
		args = append(args, "-router-cpuprofile", h.cpuProfile)
	}
	var env []string
	if h.routerProcs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", h.routerProcs))
	}
	rt, raddr, err := spawnEnv(env, args...)
	if err != nil {
		return fmt.Errorf("start router: %w", err)
	}
	defer rt.stop()
	h.routerPID = rt.cmd.Process.Pid
	routerURL := "http://" + raddr + "/"

	var directURLs []string
	for _, a := range h.addrs {
		directURLs = append(directURLs, "http://"+a+"/")
	}

	if h.has("latency") || h.has("throughput") {
		url, pid, stopNginx, err := h.startNginx()
		if err != nil {
			fmt.Fprintf(os.Stderr, "nginx: %v (skipping the nginx comparison)\n", err)
		} else {
			defer stopNginx()
			h.nginxURL, h.nginxPID = url, pid
			fmt.Fprintf(os.Stderr, "nginx: %s\n", h.nginxConf)
		}
	}

	if h.has("latency") {
		type target struct {
			name string
			urls []string
		}
		targets := []target{{"direct", directURLs}, {"router", []string{routerURL}}}
		if h.nginxURL != "" {
			targets = append(targets, target{"nginx", []string{h.nginxURL}})
		}
		for range 2 {
			for _, tgt := range targets {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				res := openLoop(ctx, tgt.urls, h.rate, time.Second, h.latencyDur)
				h.latency[tgt.name] = append(h.latency[tgt.name], res)
				fmt.Fprintf(os.Stderr, "latency %-6s %s\n", tgt.name, res)
			}
		}
	}

	if h.has("throughput") {
		if err := h.throughput(ctx, routerURL); err != nil {
			return err
		}
	}

	if h.has("flip") {
		if err := h.flipPhase(ctx); err != nil {
			return err
		}
	}

	if h.has("split") {
		res := closedLoop(ctx, []string{routerURL}, h.conns, 0, 0, h.split)
		h.splitRes = &res
		fmt.Fprintf(os.Stderr, "split %s\n", res)
	}
	h.report()
	return nil
}

func (h *harness) poolSpec() string {
	var parts []string
	for i, v := range versions {
		var list []string
		for j, a := range h.addrs {
			if h.version[j] == v {
				list = append(list, a)
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%d:%s", v, h.weights[i], strings.Join(list, ",")))
	}
	return strings.Join(parts, ";")
}

func (h *harness) throughput(ctx context.Context, routerURL string) error {
	nginxURL, nginxPID := h.nginxURL, h.nginxPID
	type target struct {
		name, url string
		cpu       func() time.Duration
	}
	targets := []target{{"router", routerURL, func() time.Duration { return sysinfo.ProcCPU(h.routerPID) }}}
	if nginxURL != "" {
		targets = append(targets, target{"nginx", nginxURL, func() time.Duration { return treeCPU(nginxPID) }})
	}
	for round := range h.rounds {
		for _, t := range targets {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			closedLoop(ctx, []string{t.url}, h.conns, 0, 2*time.Second, 0) // warm-up
			cpu0, be0 := t.cpu(), sysinfo.ProcCPU(h.backendPID)
			res := closedLoop(ctx, []string{t.url}, h.conns, 0, h.tputDur, 0)
			n := time.Duration(max(1, res.n))
			r := tputResult{rps: res.rate(), errs: res.errors, cpuPerReq: (t.cpu() - cpu0) / n, backendCPU: (sysinfo.ProcCPU(h.backendPID) - be0) / n}
			fmt.Fprintf(os.Stderr, "throughput round %d go-loadgen %-6s %s cpu/request=%s backend-cpu/request=%s\n", round+1, t.name, res, us(r.cpuPerReq), us(r.backendCPU))
			if best, ok := h.tput[t.name]; !ok || r.rps > best.rps {
				h.tput[t.name] = r
			}
		}
	}
	if wrk, err := exec.LookPath("wrk"); err == nil {
		for round := range h.rounds {
			for _, t := range targets {
				r, err := runWrk(ctx, wrk, t.url, h.conns, h.tputDur, t.cpu, func() time.Duration { return sysinfo.ProcCPU(h.backendPID) })
				if err != nil {
					return fmt.Errorf("wrk %s: %w", t.name, err)
				}
				fmt.Fprintf(os.Stderr, "throughput round %d wrk %-6s %.0f req/s errors=%d cpu/request=%s backend-cpu/request=%s\n", round+1, t.name, r.rps, r.errs, us(r.cpuPerReq), us(r.backendCPU))
				if w, ok := h.wrk[t.name]; !ok || r.rps > w.rps {
					h.wrk[t.name] = r
				}
			}
		}
	}
	return nil
}

// tputResult is one maximum-throughput run.
type tputResult struct {
	rps        float64
	errs       int
	cpuPerReq  time.Duration // CPU time of the proxy process(es) per request
	backendCPU time.Duration // CPU time of the backends per request
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func runWrk(ctx context.Context, wrk, url string, conns int, d time.Duration, cpu, backendCPU func() time.Duration) (tputResult, error) {
	// Warm up the connection pools, then measure.
	exec.CommandContext(ctx, wrk, "-t2", "-c"+strconv.Itoa(conns), "-d2s", url).Run()
	cpu0, be0 := cpu(), backendCPU()
	out, err := exec.CommandContext(ctx, wrk, "-t2", "-c"+strconv.Itoa(conns), fmt.Sprintf("-d%ds", int(d.Seconds())), url).CombinedOutput()
	used, beUsed := cpu()-cpu0, backendCPU()-be0
	if err != nil {
		return tputResult{}, fmt.Errorf("%v: %s", err, out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return tputResult{}, fmt.Errorf("no Requests/sec in %s", out)
	}
	var r tputResult
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := wrkRequests.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		r.cpuPerReq = used / time.Duration(max(1, n))
		r.backendCPU = beUsed / time.Duration(max(1, n))
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		r.errs += n
	}
	if m := wrkSocket.FindSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(string(s))
			r.errs += n
		}
	}
	return r, nil
}

// treeCPU returns the CPU time of a process and its direct children (the
// nginx master and its workers).
func treeCPU(pid int) time.Duration {
	total := sysinfo.ProcCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if f := strings.Fields(s[i+1:]); i > 0 && len(f) > 1 && f[1] == strconv.Itoa(pid) {
			total += sysinfo.ProcCPU(child)
		}
	}
	return total
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

func (h *harness) flipPhase(ctx context.Context) error {
	rt, raddr, err := spawn("-role", "router", "-pools", h.poolSpec(), "-flipping", "-flip", h.flip.String())
	if err != nil {
		return fmt.Errorf("start flipping router: %w", err)
	}
	res := closedLoop(ctx, []string{"http://" + raddr + "/"}, h.conns, 0, h.duration, 0)
	final := rt.stop()
	h.flipRes = &res
	h.flipInfo = final
	fmt.Fprintf(os.Stderr, "flip %s (router: %s)\n", res, final)
	return nil
}

// startNginx writes an nginx.conf with the same weighted upstreams and runs
// nginx in the foreground as the current user.
func (h *harness) startNginx() (string, int, func(), error) {
	bin := h.nginxBin
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("nginx"); err != nil {
			bin = "/usr/sbin/nginx"
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return "", 0, nil, fmt.Errorf("no nginx binary (apt-get install -y nginx): %w", err)
	}
	dir, err := os.MkdirTemp("", "airlock-bench-nginx-")
	if err != nil {
		return "", 0, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()

	// Per-instance weights: a version's weight spread over its instances.
	var servers strings.Builder
	for i, v := range versions {
		var list []string
		for j, a := range h.addrs {
			if h.version[j] == v {
				list = append(list, a)
			}
		}
		for _, a := range list {
			if w := h.weights[i] * 100 / len(list); w > 0 {
				fmt.Fprintf(&servers, "    server %s weight=%d;\n", a, w)
			}
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	// Both proxies get the same CPUs: as many nginx workers as the router
	// has Ps.
	workers := h.nginxWorkers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0) // the router inherits the environment
		if h.routerProcs > 0 {
			workers = h.routerProcs
		}
	}
	listen := addr
	if h.reuseport {
		listen += " reuseport"
	}
	// Like the router: client and upstream connections stay open however
	// many requests they carry (nginx closes them after 1,000 by default),
	// the client's Host goes upstream, and X-Forwarded-For and
	// X-Forwarded-Proto are set.
	conf := fmt.Sprintf(`%s
worker_processes %[5]d;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream app {
%[3]s    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`, user, dir, servers.String(), listen, workers)
	h.nginxConf = fmt.Sprintf("%d workers, keepalive 64 per worker to the upstreams, reuseport %v", workers, h.reuseport)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", 0, nil, errors.New("nginx did not start listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addr + "/", cmd.Process.Pid, stop, nil
}

// ---- child processes ----

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	once  sync.Once
	final string
}

// spawn re-executes this program with args and waits for its "ready X" line.
func spawn(args ...string) (*child, string, error) { return spawnEnv(nil, args...) }

// spawnEnv is spawn with extra environment variables.
func spawnEnv(env []string, args ...string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !c.out.Scan() {
		c.stop()
		return nil, "", fmt.Errorf("%v exited before it was ready", args)
	}
	line := c.out.Text()
	v, ok := strings.CutPrefix(line, "ready ")
	if !ok {
		c.stop()
		return nil, "", fmt.Errorf("%v: unexpected first line %q", args, line)
	}
	return c, v, nil
}

// stop closes the child's stdin, returns its last output line and waits.
func (c *child) stop() string {
	c.once.Do(func() {
		c.stdin.Close()
		for c.out.Scan() {
			c.final = c.out.Text()
		}
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	})
	return c.final
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }
