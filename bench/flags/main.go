// Command flags measures airlock's OFREP single-flag evaluation on
// loopback, and flagd's serving the same 100 flags when a flagd binary is
// given, with one load generator.
//
//	go run ./bench/flags [-duration 10s] [-connections 64] [-rate 5000] [-flagd PATH] [-json]
//
// It builds airlock (or runs -airlock PATH), starts it with a fresh --data
// directory on a free loopback port, applies an Environment (tier staging,
// so flag writes need no approvals), a Segment and 100 flags, and creates
// evaluation keys. flagd, when found, serves the same flags from a JSON
// file. Then, for each server in turn:
//
//  1. closed loop: -connections workers send POST
//     /ofrep/v1/evaluate/flags/{key} (a random key of the 100, a random
//     context) back to back for -duration, after -warmup;
//  2. open loop: -rate requests a second for -duration, each released at
//     its scheduled time and timed from it (no coordinated omission).
//
// airlock limits each evaluation key to 1,000 evaluations a second (bursts
// of 2,000) by default, so the load rotates over -keys evaluation keys.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
	"github.com/airlock-dev/airlock/internal/client"
	airflag "github.com/airlock-dev/airlock/internal/flag"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "measured time of each run")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up before each run (not counted)")
	conns := flag.Int("connections", 64, "connections of the closed-loop run")
	rate := flag.Int("rate", 5000, "offered rate of the open-loop run (requests/s)")
	workers := flag.Int("workers", 256, "workers (and connections) of the open-loop run")
	keys := flag.Int("keys", 0, "airlock evaluation keys to rotate over (default: connections, at least 64)")
	flagdBin := flag.String("flagd", "", "flagd binary (default: flagd from PATH; without one flagd is not measured)")
	airlockBin := flag.String("airlock", "", "airlock binary (default: go build ./cmd/airlock)")
	modes := flag.String("modes", "closed,open", "runs to make: closed, open or both")
	jsonOut := flag.Bool("json", false, "print the results as JSON instead of a table")
	floor := flag.Bool("floor", true, "also measure a minimal net/http server answering a fixed OFREP result: what loopback HTTP costs on this machine")
	role := flag.String("role", "", "internal: floor (the harness re-executes itself)")
	flag.Parse()
	if *role == "floor" {
		runFloor()
		return
	}
	if *keys <= 0 {
		*keys = max(64, *conns)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts{
		duration: *duration, warmup: *warmup, conns: *conns, rate: *rate, workers: *workers, keys: *keys,
		flagdBin: *flagdBin, airlockBin: *airlockBin, modes: *modes, json: *jsonOut, floor: *floor,
	}); err != nil {
		log.Fatal(err)
	}
}

type opts struct {
	duration, warmup     time.Duration
	conns, rate, workers int
	keys                 int
	flagdBin, airlockBin string
	modes                string
	json, floor          bool
}

func run(ctx context.Context, o opts) error {
	dir, err := os.MkdirTemp("", "airlock-bench-flags-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep := report{
		Machine:     fmt.Sprintf("%d CPUs (%s), %s %s/%s", runtime.NumCPU(), sysinfo.CPUModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH),
		LoadStart:   sysinfo.LoadAvg(),
		Duration:    o.duration.String(),
		Connections: o.conns,
		Rate:        o.rate,
		Keys:        o.keys,
	}

	bin := o.airlockBin
	if bin == "" {
		bin = filepath.Join(dir, "airlock")
		logf("building airlock ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/airlock")
		build.Dir, err = moduleRoot()
		if err != nil {
			return err
		}
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/airlock: %w", err)
		}
	}
	air, err := startAirlock(ctx, bin, filepath.Join(dir, "data"))
	if err != nil {
		return fmt.Errorf("start airlock: %w", err)
	}
	defer air.stop()
	logf("airlock serving on %s (pid %d)", air.base, air.pid)
	if air.keys, err = setupAirlock(ctx, air.base, filepath.Join(dir, "data"), o.keys); err != nil {
		return err
	}
	logf("applied 1 environment, 1 segment, 100 flags; %d evaluation keys for %s", len(air.keys), benchEnv)
	if err := checkAirlock(air); err != nil {
		return err
	}
	targets := []*target{&air.target}
	if o.floor {
		fl, err := startFloor()
		if err != nil {
			return fmt.Errorf("start the net/http floor: %w", err)
		}
		defer fl.stop()
		targets = append(targets, &fl.target)
	}

	flagdPath := o.flagdBin
	if flagdPath == "" {
		flagdPath, _ = exec.LookPath("flagd")
	}
	if flagdPath == "" {
		rep.Flagd = "not measured (no flagd binary: -flagd PATH)"
		logf("flagd: %s", rep.Flagd)
	} else {
		fd, err := startFlagd(ctx, flagdPath, filepath.Join(dir, "flagd"))
		if err != nil {
			return fmt.Errorf("start flagd (%s): %w", flagdPath, err)
		}
		defer fd.stop()
		rep.Flagd = fd.version
		logf("flagd %s serving OFREP on %s (pid %d)", fd.version, fd.base, fd.pid)
		if err := checkFlagd(fd); err != nil {
			return err
		}
		targets = append(targets, &fd.target)
	}

	g := &loadGen{bodies: requestBodies(4096, 1)}
	for _, f := range airlockFlags() {
		g.urls = append(g.urls, "/ofrep/v1/evaluate/flags/"+f.Key)
	}
	for _, mode := range strings.Split(o.modes, ",") {
		for _, t := range targets {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var r result
			switch strings.TrimSpace(mode) {
			case "closed":
				r = g.closedLoop(ctx, t, o.conns, o.warmup, o.duration)
			case "open":
				r = g.openLoop(ctx, t, o.rate, o.workers, o.warmup, o.duration)
			default:
				return fmt.Errorf("-modes: unknown mode %q (closed, open)", mode)
			}
			logf("%s", r)
			rep.Results = append(rep.Results, r)
		}
	}
	rep.LoadEnd = sysinfo.LoadAvg()
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep.finish())
	}
	rep.finish().print(os.Stdout)
	return nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// ---- airlock ----

type server struct {
	target
	cmd     *exec.Cmd
	stdin   io.Closer // the floor stops when it closes
	version string
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if s.stdin != nil {
		s.stdin.Close()
	} else {
		s.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startAirlock(ctx context.Context, bin, data string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "server", "--data", data, "--listen", addr, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{target: target{name: "airlock", base: "http://" + addr, pid: cmd.Process.Pid}, cmd: cmd}
	if err := waitHTTP(s.base+"/readyz", http.MethodGet, nil, 20*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(url, method string, body []byte, timeout time.Duration) error {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// setupAirlock applies the environment, the segment and the flags with the
// bootstrap admin token and creates n evaluation keys for the environment.
func setupAirlock(ctx context.Context, base, data string, n int) ([]string, error) {
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		return nil, err
	}
	c, err := client.New(base, strings.TrimSpace(string(tok)))
	if err != nil {
		return nil, err
	}
	docs, err := airlockDocuments()
	if err != nil {
		return nil, err
	}
	res, err := c.Apply(ctx, "bench/flags", docs, client.ContentYAML, false)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	for _, r := range res {
		if r.Action == "proposed" {
			return nil, fmt.Errorf("apply: %s %s was proposed, not applied (%s)", r.Kind, r.Name, r.Message)
		}
	}
	var keys []string
	for i := range n {
		t, err := c.CreateToken(ctx, client.TokenRequest{Name: fmt.Sprintf("flags-bench-%03d", i), Roles: []string{"evaluator"}, Environments: []string{benchEnv}})
		if err != nil {
			return nil, fmt.Errorf("create evaluation key: %w", err)
		}
		keys = append(keys, t.Token)
	}
	return keys, nil
}

// evalOnce evaluates one flag and decodes the answer.
func evalOnce(t *target, key string, body []byte) (int, map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, t.base+"/ofrep/v1/evaluate/flags/"+key, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if len(t.keys) > 0 {
		req.Header.Set("Authorization", "Bearer "+t.keys[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, m, nil
}

// checkAirlock evaluates every flag for a few contexts and compares the
// answers with the evaluators compiled here.
func checkAirlock(s *server) error {
	segs := map[string]airflag.SegmentSpec{segmentName: segment()}
	bodies := requestBodies(10, 99)
	for _, f := range airlockFlags() {
		ev, err := airflag.Compile(f.Spec, segs)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			c, err := airflag.DecodeRequestBytes(b)
			if err != nil {
				return err
			}
			want := ev.Evaluate(c)
			code, got, err := evalOnce(&s.target, f.Key, b)
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("airlock check %s %s: %d %v %v", f.Key, b, code, got, err)
			}
			if got["variant"] != want.Variant || got["reason"] != want.Reason {
				return fmt.Errorf("airlock check %s %s: got %v, want variant %s reason %s", f.Key, b, got, want.Variant, want.Reason)
			}
		}
	}
	return nil
}

// ---- flagd ----

func startFlagd(ctx context.Context, bin, dir string) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	doc, err := flagdDocument()
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "flags.flagd.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		return nil, err
	}
	version := "unknown version"
	if out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput(); err == nil {
		version = strings.Join(strings.Fields(string(out)), " ")
	}
	help, _ := exec.CommandContext(ctx, bin, "start", "--help").CombinedOutput()
	// Every port flagd opens, so that none collides with another program.
	args := []string{"start", "--uri", "file:" + file}
	ofrep := ""
	for _, p := range []string{"port", "ofrep-port", "management-port", "sync-port", "sync-http-port"} {
		if p != "port" && !bytes.Contains(help, []byte("--"+p)) {
			continue
		}
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		args = append(args, "--"+p, port)
		if p == "ofrep-port" {
			ofrep = addr
		}
	}
	if ofrep == "" {
		return nil, errors.New("this flagd has no --ofrep-port flag (OFREP needs flagd v0.10 or later)")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	logw := &lineLog{prefix: "flagd: "}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{target: target{name: "flagd", base: "http://" + ofrep, pid: cmd.Process.Pid}, cmd: cmd, version: version}
	if err := waitHTTP(s.base+"/ofrep/v1/evaluate/flags/static-00", http.MethodPost, []byte(`{"context":{}}`), 20*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// checkFlagd checks flagd's answers where they do not depend on the hash
// of a split: static flags, the staff rule and the segment rule.
func checkFlagd(s *server) error {
	segs := map[string]airflag.SegmentSpec{segmentName: segment()}
	bodies := requestBodies(10, 99)
	for _, f := range airlockFlags() {
		ev, err := airflag.Compile(f.Spec, segs)
		if err != nil {
			return err
		}
		for _, b := range bodies {
			c, _ := airflag.DecodeRequestBytes(b)
			want := ev.Evaluate(c)
			code, got, err := evalOnce(&s.target, f.Key, b)
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("flagd check %s %s: %d %v %v", f.Key, b, code, got, err)
			}
			if want.Reason != airflag.ReasonSplit && got["variant"] != want.Variant {
				return fmt.Errorf("flagd check %s %s: got %v, want variant %s", f.Key, b, got, want.Variant)
			}
		}
	}
	return nil
}

// lineLog passes a child's output to stderr with a prefix, dropping its
// per-request lines if it has any.
type lineLog struct {
	prefix string
	buf    []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		if strings.Contains(line, "error") || strings.Contains(line, "ERROR") || strings.Contains(line, "warn") {
			fmt.Fprintln(os.Stderr, l.prefix+line)
		}
	}
	return len(p), nil
}

// ---- the net/http floor ----

// runFloor serves single-flag OFREP with a fixed answer and no work: its
// figures are what Go's net/http on loopback costs on this machine, under
// the same load generator, at the same time.
func runFloor() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ct := []string{"application/json"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := strings.TrimPrefix(r.URL.Path, "/ofrep/v1/evaluate/flags/")
		w.Header()["Content-Type"] = ct
		fmt.Fprintf(w, `{"key":%q,"reason":"STATIC","variant":"on","value":true}`+"\n", key)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println("ready", ln.Addr().String())
	io.Copy(io.Discard, os.Stdin) // the harness closes stdin (or dies)
}

func startFloor() (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-role", "floor")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{target: target{name: floorName, pid: cmd.Process.Pid}, cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		s.stop()
		return nil, errors.New("exited before it was ready")
	}
	addr, ok := strings.CutPrefix(sc.Text(), "ready ")
	if !ok {
		s.stop()
		return nil, fmt.Errorf("unexpected first line %q", sc.Text())
	}
	s.base = "http://" + addr
	return s, nil
}

// ---- machine ----

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the airlock module (or pass -airlock PATH)")
	}
	return filepath.Dir(mod), nil
}
