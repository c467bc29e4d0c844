package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/server"
)

// TestMain lets the test binary act as the airlock command, so scripts run
// `exec airlock ...` against the code under test.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"airlock": func() { os.Exit(Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/script/*.txtar end to end. Each script gets its
// own real server (SQLite in $DATA, a free port), with AIRLOCK_SERVER and
// AIRLOCK_TOKEN (the bootstrap admin token) set, and copies of
// examples/quickstart.yaml and examples/seed-pipeline.yaml in its work
// directory. $FREEADDR is another free address, for scripts that start
// `airlock server` themselves.
func TestScripts(t *testing.T) {
	t.Parallel()
	examples := map[string][]byte{}
	for _, name := range []string{"quickstart.yaml", "seed-pipeline.yaml", "flags.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		examples[name] = b
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			for name, b := range examples {
				if err := os.WriteFile(filepath.Join(e.WorkDir, name), b, 0o644); err != nil {
					return err
				}
			}
			free, err := freeAddr()
			if err != nil {
				return err
			}
			e.Setenv("FREEADDR", free)
			return startServer(e, filepath.Join(e.WorkDir, ".data"))
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready":  cmdWaitReady,
			"exits":      cmdExits,
			"setenvfile": cmdSetenvFile,
			"replace":    cmdReplace,
			"sleep":      cmdSleep,
			"itsm":       cmdITSM,
			"buildbin":   cmdBuildBin,
			"httpget":    cmdHTTPGet,
		},
	})
}

// startServer runs a real server in this process for one script and stops
// it when the script ends.
func startServer(e *testscript.Env, data string) error {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			DataDir: data,
			Listen:  "127.0.0.1:0",
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			Ready:   func(addr string) { ready <- addr },
		})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		return fmt.Errorf("start server: %w", err)
	case <-time.After(30 * time.Second):
		cancel()
		return fmt.Errorf("server did not start within 30s")
	}
	e.Defer(func() {
		cancel()
		if err := <-done; err != nil {
			e.T().Log("server stopped with error: ", err)
		}
		// Instances outlive the server (the next one adopts them); a test
		// leaves none behind.
		sup, err := local.New(local.Options{Dir: filepath.Join(data, "runtime")})
		if err != nil {
			e.T().Log("stopping the instances: ", err)
			return
		}
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		if err := sup.StopAll(sctx); err != nil {
			e.T().Log("stopping the instances: ", err)
		}
		sup.Close()
	})
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		return err
	}
	e.Setenv(EnvServer, "http://"+addr)
	e.Setenv(EnvToken, strings.TrimSpace(string(token)))
	e.Setenv("ADMIN", strings.TrimSpace(string(token)))
	e.Setenv("DATA", data)
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cmdWaitReady waits up to 30 seconds for http://ADDR/readyz to answer 200.
func cmdWaitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitready ADDR")
	}
	url := "http://" + args[0] + "/readyz"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s not ready after 30s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdExits runs a command like exec and checks its exit code:
// exits CODE COMMAND [ARGS...].
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdSetenvFile sets an environment variable to the trimmed content of a
// file, or of the last command's stdout: setenvfile NAME FILE|stdout.
func cmdSetenvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setenvfile NAME FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// cmdReplace replaces the first occurrence of OLD with NEW in FILE, and
// fails if there is none: replace FILE OLD NEW.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	data := ts.ReadFile(args[0])
	if !strings.Contains(data, args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Replace(data, args[1], args[2], 1)), 0o600))
}

// cmdSleep pauses the script, e.g. to let a background command start:
// sleep DURATION.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// cmdITSM starts a change system over real HTTP on loopback for the rest
// of the script and sets NAME to its base URL: itsm NAME DIR. It answers
// GET /changes/KEY with the file DIR/KEY.json (read on each request, so the
// script can change the answer) and 404 when there is none.
func cmdITSM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: itsm NAME DIR")
	}
	dir := ts.MkAbs(args[1])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/changes/")
		if !ok || strings.ContainsAny(key, "/\\") {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, key+".json"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	ts.Defer(srv.Close)
	ts.Setenv(args[0], srv.URL)
}

var built struct {
	once sync.Once
	path string
	err  error
}

// cmdBuildBin builds the airlock command once per test run and sets NAME
// to the binary's path: buildbin NAME. Scripts deploy it as an artifact
// (airlock demo-app serves HTTP on $PORT).
func cmdBuildBin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: buildbin NAME")
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "airlock-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "airlock")
		out, err := exec.Command("go", "build", "-o", built.path, "github.com/airlock-dev/airlock/cmd/airlock").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	ts.Check(built.err)
	ts.Setenv(args[0], built.path)
}

// cmdHTTPGet requests URL until it answers 200 (up to 20 s) and writes the
// body to stdout: httpget URL.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: httpget URL")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(args[0])
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ts.Stdout().Write(b)
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, b)
		}
		if time.Now().After(deadline) {
			ts.Fatalf("GET %s: %v", args[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
