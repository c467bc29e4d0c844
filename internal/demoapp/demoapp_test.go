package demoapp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as the demo service: with
// DEMOAPP_TEST_RUN=1 it runs Run with its arguments and exits like the CLI
// command will (1 on error).
func TestMain(m *testing.M) {
	if os.Getenv("DEMOAPP_TEST_RUN") == "1" {
		if err := Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuf is a goroutine-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the service in-process and returns its base URL and log.
func start(t *testing.T, args ...string) (string, *syncBuf) {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"--port", strconv.Itoa(port)}, args...), out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return base, out
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo app did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServesVersionAndLogsEachRequest(t *testing.T) {
	t.Parallel()
	base, out := start(t, "--version", "1.2.3")
	code, body := get(t, base+"/")
	if code != 200 || body != "version 1.2.3\n" {
		t.Fatalf("GET / = %d %q, want 200 %q", code, body, "version 1.2.3\n")
	}
	get(t, base+"/")
	if n := strings.Count(out.String(), `msg="request served"`); n != 2 {
		t.Fatalf("log has %d request lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out.String(), "level=info") {
		t.Fatalf("log lines lack level=info:\n%s", out)
	}
}

func TestErrorRateAnswers500AndLogsError(t *testing.T) {
	t.Parallel()
	base, out := start(t, "--error-rate", "1")
	code, _ := get(t, base+"/")
	if code != 500 {
		t.Fatalf("GET / with --error-rate 1 = %d, want 500", code)
	}
	if !strings.Contains(out.String(), `level=error msg="payment declined: id=1"`) {
		t.Fatalf("log lacks the error line:\n%s", out)
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	t.Parallel()
	base, _ := start(t, "--latency", "150ms")
	begin := time.Now()
	get(t, base+"/")
	if d := time.Since(begin); d < 150*time.Millisecond {
		t.Fatalf("GET / took %v, want at least the 150ms latency", d)
	}
}

func TestFailHealth(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--port", strconv.Itoa(port), "--fail-health"}, io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for i := 0; ; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("GET /healthz with --fail-health = %d, want 503", resp.StatusCode)
			}
			return
		}
		if i > 500 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--port", "1", "--error-rate", "1.5"},
		{"--port", "70000"},
		{"--port", "1", "extra"},
		{"--port", "1", "--latency", "-1s"},
	} {
		if err := Run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("Run(%q) = nil, want an error", args)
		}
	}
}

func TestPortTakenIsAnError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	err = Run(context.Background(), []string{"--port", strconv.Itoa(port)}, io.Discard, io.Discard)
	if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Run on a taken port = %v, want EADDRINUSE", err)
	}
}

// process runs the demo service as a real child process.
func process(t *testing.T, port int, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"DEMOAPP_TEST_RUN=1", "PORT=" + strconv.Itoa(port)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.Contains(sc.Text(), `msg="listening"`) {
		t.Fatalf("first line %q, want the listening line", sc.Text())
	}
	go io.Copy(io.Discard, stdout)
	return cmd, sc
}

func TestSIGTERMShutsDownGracefully(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cmd, _ := process(t, port, "--latency", "300ms")
	// A request in flight when SIGTERM arrives is still answered.
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{code: resp.StatusCode}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.code != 200 {
		t.Fatalf("in-flight request during SIGTERM: %d %v, want 200", r.code, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
}

func TestExitAfterExitsWithStatus1(t *testing.T) {
	t.Parallel()
	cmd, _ := process(t, freePort(t), "--exit-after", "100ms")
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want exit status 1", err)
	}
}
