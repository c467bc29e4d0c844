package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/demoapp"
)

// The test binary is also the artifact the supervisor runs: started with
// LOCAL_TEST_MODE set (through the Spec's variables, the only way anything
// reaches a child's environment) it plays one of the roles below instead of
// running tests.
const modeVar = "LOCAL_TEST_MODE"

// testBinary and testDigest are os.Args[0] and its digest.
var testBinary, testDigest string

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeVar); mode != "" {
		os.Exit(helper(mode))
	}
	// A secret of airlock's own that must never reach an instance.
	os.Setenv("AIRLOCK_TOKEN", "airlock-secret-token-must-not-leak")
	var err error
	testBinary, err = os.Executable()
	if err != nil {
		panic(err)
	}
	testDigest, err = digestFile(testBinary)
	if err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	ctx := context.Background()
	runDemo := func() int {
		if err := demoapp.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	switch mode {
	case "demo":
		return runDemo()
	case "env":
		wd, _ := os.Getwd()
		fmt.Printf("CWD=%s\n", wd)
		for _, kv := range os.Environ() {
			fmt.Printf("ENV %s\n", kv)
		}
		return runDemo()
	case "exit":
		fmt.Fprintln(os.Stderr, "boom: cannot connect to the database")
		return 3
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ignoring SIGTERM")
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		return 1
	case "toggle-health":
		// Healthy until a file named "unhealthy" appears in the working
		// directory.
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := os.Stat("unhealthy"); err == nil {
				http.Error(w, "sick", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok")
		}))
		return 1
	case "spawn":
		child := exec.Command(os.Args[0])
		child.Env = []string{modeVar + "=sleep"}
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.WriteFile("child.pid", fmt.Appendf(nil, "%d", child.Process.Pid), 0o600)
		return runDemo()
	case "sleep":
		time.Sleep(time.Hour)
		return 0
	case "chatty":
		line := strings.Repeat("x", 999)
		for i := range 300 {
			fmt.Printf("%04d %s\n", i, line[5:])
			time.Sleep(2 * time.Millisecond)
		}
		fmt.Println("last line")
		return runDemo()
	case "supervisor":
		// The first airlock of the re-adoption test: it starts instances,
		// prints them, and waits to be killed with SIGKILL.
		s, err := New(fastOptions(os.Getenv("LOCAL_TEST_DIR")))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		self, _ := os.Executable()
		d, _ := digestFile(self)
		f, _ := os.Open(self)
		if _, err := s.Put(f, d); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		spec := demoSpec(d, "v1", 2)
		if err := s.Ensure(ctx, spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := s.WaitHealthy(wctx, spec.App, spec.Env, spec.Version); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		json.NewEncoder(os.Stdout).Encode(s.Instances(spec.App, spec.Env, spec.Version))
		select {}
	}
	fmt.Fprintf(os.Stderr, "unknown %s %q\n", modeVar, mode)
	return 2
}

// fastOptions are supervisor options with short intervals for tests.
func fastOptions(dir string) Options {
	return Options{
		Dir:               dir,
		HealthInterval:    50 * time.Millisecond,
		HealthTimeout:     time.Second,
		LogCheckInterval:  50 * time.Millisecond,
		AdoptPollInterval: 50 * time.Millisecond,
		Backoff:           BackoffPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, ResetAfter: time.Minute, MaxCrashes: 4},
	}
}

func demoSpec(digest, version string, replicas int, args ...string) Spec {
	return Spec{
		App: "shop", Env: "dev", Version: version, Digest: digest, Replicas: replicas,
		Vars: map[string]string{modeVar: "demo"},
		Args: append([]string{"--version", version}, args...),
	}
}

// logBuffer collects the supervisor's log.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newSupervisor returns a supervisor on a fresh directory holding the test
// binary as an artifact; everything it runs is stopped at the end.
func newSupervisor(t *testing.T, tweak func(*Options)) (*Supervisor, *logBuffer) {
	t.Helper()
	opts := fastOptions(t.TempDir())
	lb := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(lb, nil))
	if tweak != nil {
		tweak(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSupervisor(t, s) })
	putTestBinary(t, s)
	return s, lb
}

func closeSupervisor(t *testing.T, s *Supervisor) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.StopAll(ctx); err != nil {
		t.Errorf("StopAll: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func putTestBinary(t *testing.T, s *Supervisor) {
	t.Helper()
	f, err := os.Open(testBinary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Put(f, testDigest); err != nil {
		t.Fatal(err)
	}
}

func ensureHealthy(t *testing.T, s *Supervisor, spec Spec) []Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitHealthy(ctx, spec.App, spec.Env, spec.Version); err != nil {
		t.Fatal(err)
	}
	return s.Instances(spec.App, spec.Env, spec.Version)
}

func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond every 20ms until it holds or 15s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
