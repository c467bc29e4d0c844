// Package demoapp is the small HTTP service that airlock deploys in its demo
// and in the tests of the local runtime. It answers "version X" on /, can be
// told to fail a fraction of requests, to be slow, to fail its health check
// or to crash after a while, and logs one line per request in the
// logfmt-like form that the log-pattern analysis reads.
package demoapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ShutdownTimeout bounds the graceful shutdown after SIGTERM, SIGINT or the
// end of the context: requests still running after it are cut.
const ShutdownTimeout = 5 * time.Second

// ErrExitAfter is returned by Run when --exit-after elapsed. The command that
// wraps Run exits with status 1 on it, which is what a crash loop test needs.
var ErrExitAfter = errors.New("demo-app: --exit-after elapsed, exiting with failure")

// Config is the parsed command line of the demo service.
type Config struct {
	Port       int
	Version    string
	ErrorRate  float64
	Latency    time.Duration
	FailHealth bool
	ExitAfter  time.Duration
	// FailHealthAfter makes /healthz fail once the service has run this
	// long (a version that breaks under way).
	FailHealthAfter time.Duration
	// MisbehaveIn limits --error-rate, --fail-health and
	// --fail-health-after to one environment ($AIRLOCK_ENVIRONMENT): a
	// version that breaks only with production's configuration.
	MisbehaveIn string
}

// TrailerPrefix starts a line at the end of the demo service's executable
// that carries more flags: a copy of the airlock binary with
// "\n#airlock-demo-args: --fail-health-after 3s\n" appended is a demo
// artifact with a bug of its own (and a digest of its own).
const TrailerPrefix = "#airlock-demo-args: "

// trailerArgs reads the flags appended to the running executable.
func trailerArgs() []string {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	f, err := os.Open(self)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < 2 {
		return nil
	}
	n := min(fi.Size(), 512)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, fi.Size()-n); err != nil {
		return nil
	}
	i := strings.LastIndex(string(buf), "\n"+TrailerPrefix)
	if i < 0 {
		return nil
	}
	line := strings.TrimSpace(strings.TrimPrefix(string(buf[i+1:]), TrailerPrefix))
	return strings.Fields(line)
}

// ParseArgs parses the demo service's flags. The port defaults to $PORT.
// Errors name the bad flag; flag output (usage) goes to stderr.
func ParseArgs(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("demo-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Port, "port", 0, "TCP port on 127.0.0.1 (default $PORT)")
	defVersion := os.Getenv("AIRLOCK_VERSION") // set by airlock's local runtime
	if defVersion == "" {
		defVersion = "dev"
	}
	fs.StringVar(&c.Version, "version", defVersion, "version reported by / (default: $AIRLOCK_VERSION, else dev)")
	fs.Float64Var(&c.ErrorRate, "error-rate", 0, "fraction (0..1) of requests to / answered 500")
	fs.DurationVar(&c.Latency, "latency", 0, "delay added to every request to /, e.g. 20ms")
	fs.BoolVar(&c.FailHealth, "fail-health", false, "answer /healthz with 503")
	fs.DurationVar(&c.ExitAfter, "exit-after", 0, "exit with status 1 after this long (0: never)")
	fs.DurationVar(&c.FailHealthAfter, "fail-health-after", 0, "answer /healthz with 503 once this long has passed (0: never)")
	fs.StringVar(&c.MisbehaveIn, "misbehave-in", "", "misbehave (error rate, failing health) only when $AIRLOCK_ENVIRONMENT is this")
	if err := fs.Parse(append(args, trailerArgs()...)); err != nil {
		return c, err
	}
	if c.MisbehaveIn != "" && os.Getenv("AIRLOCK_ENVIRONMENT") != c.MisbehaveIn {
		c.ErrorRate, c.FailHealth, c.FailHealthAfter = 0, false, 0
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("demo-app: unexpected argument %q", fs.Arg(0))
	}
	if c.Port == 0 {
		p := os.Getenv("PORT")
		if p == "" {
			return c, errors.New("demo-app: no port: pass --port or set PORT")
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return c, fmt.Errorf("demo-app: PORT=%q is not a port number", p)
		}
		c.Port = n
	}
	if c.Port <= 0 || c.Port > 65535 {
		return c, fmt.Errorf("demo-app: port %d is out of range 1..65535", c.Port)
	}
	if c.ErrorRate < 0 || c.ErrorRate > 1 {
		return c, fmt.Errorf("demo-app: --error-rate %v must be between 0 and 1", c.ErrorRate)
	}
	if c.Latency < 0 || c.ExitAfter < 0 {
		return c, errors.New("demo-app: --latency and --exit-after must not be negative")
	}
	return c, nil
}

// Run parses args and serves on 127.0.0.1 until ctx ends, SIGTERM or SIGINT
// arrives (nil after a graceful shutdown of at most ShutdownTimeout), or
// --exit-after elapses (ErrExitAfter). It returns the listen error when the
// port is taken. Run installs its own SIGTERM/SIGINT handling for its
// duration; it is meant to be the whole of a process.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := ParseArgs(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo-app: listen %s: %w", addr, err)
	}
	lg := &logger{w: stdout}
	srv := &http.Server{Handler: handler(cfg, lg), ReadHeaderTimeout: 10 * time.Second}
	lg.printf("level=info msg=%q addr=%s version=%q pid=%d", "listening", addr, cfg.Version, os.Getpid())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var exitAfter <-chan time.Time
	if cfg.ExitAfter > 0 {
		t := time.NewTimer(cfg.ExitAfter)
		defer t.Stop()
		exitAfter = t.C
	}
	var result error
	select {
	case err := <-serveErr:
		return fmt.Errorf("demo-app: serve: %w", err)
	case <-exitAfter:
		lg.printf("level=error msg=%q version=%q", "exit-after elapsed, exiting with status 1", cfg.Version)
		result = ErrExitAfter
	case <-ctx.Done():
		lg.printf("level=info msg=%q version=%q", "shutting down", cfg.Version)
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return result
}

// handler returns the demo service's routes: / and /healthz. Every request to /
// and every failed health check is logged as one line to lg.
func handler(cfg Config, lg *logger) http.Handler {
	var seq atomic.Int64
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.FailHealth || (cfg.FailHealthAfter > 0 && time.Since(started) > cfg.FailHealthAfter) {
			http.Error(w, "unhealthy (--fail-health)", http.StatusServiceUnavailable)
			lg.printf("level=warn msg=%q method=%s path=%s status=503 version=%q", "health check failed", r.Method, r.URL.Path, cfg.Version)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := seq.Add(1)
		if cfg.Latency > 0 {
			t := time.NewTimer(cfg.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if cfg.ErrorRate > 0 && rand.Float64() < cfg.ErrorRate {
			http.Error(w, "internal error", http.StatusInternalServerError)
			lg.printf("level=error msg=%q method=%s path=%s status=500 duration_ms=%d version=%q",
				fmt.Sprintf("payment declined: id=%d", id), r.Method, r.URL.Path, time.Since(start).Milliseconds(), cfg.Version)
			return
		}
		fmt.Fprintf(w, "version %s\n", cfg.Version)
		lg.printf("level=info msg=%q method=%s path=%s status=200 duration_ms=%d version=%q",
			"request served", r.Method, r.URL.Path, time.Since(start).Milliseconds(), cfg.Version)
	})
	return mux
}

// logger writes whole lines, one at a time, each prefixed with the time.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	line := "time=" + time.Now().UTC().Format(time.RFC3339Nano) + " " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line)
}
