package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

// Limits of the exec broker.
const (
	DefaultExecTimeout = 30 * time.Second
	// MaxStderrQuote is how much of the end of a failed command's stderr
	// an error quotes.
	MaxStderrQuote = 512
	// DefaultPath is the commands' PATH when the server has none.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// waitDelay bounds the wait for the command's output to close after it
	// exited or was killed (something it started may keep it open).
	waitDelay = 2 * time.Second
)

// ExecConfig is the configuration of an "exec" broker:
//
//	{"grant": ["/usr/local/bin/grant-vpn", "--group", "prod"],
//	 "revoke": ["/usr/local/bin/revoke-vpn"], "timeout": "30s"}
//
// Each command is an argument vector run directly, without a shell; its
// first element is an absolute path.
type ExecConfig struct {
	Grant   []string `json:"grant"`
	Revoke  []string `json:"revoke"`
	Timeout string   `json:"timeout,omitempty"` // 1s to 5m, default 30s
}

// DecodeExecConfig strictly decodes and checks an exec broker's
// configuration; the error names the field at fault. It reads nothing
// from the environment or the file system.
func DecodeExecConfig(config json.RawMessage) (ExecConfig, error) {
	fields, err := decodeFields("exec", config, "grant", "revoke", "timeout")
	if err != nil {
		return ExecConfig{}, err
	}
	var cfg ExecConfig
	for _, f := range []struct {
		name string
		argv *[]string
	}{{"grant", &cfg.Grant}, {"revoke", &cfg.Revoke}} {
		raw, ok := fields[f.name]
		if !ok {
			return ExecConfig{}, fmt.Errorf("exec.%s is required: the command that %ss access, e.g. [\"/usr/local/bin/%s-access\"]", f.name, f.name, f.name)
		}
		if err := json.Unmarshal(raw, f.argv); err != nil {
			return ExecConfig{}, fmt.Errorf("exec.%s must be a list of strings: the program's absolute path, then its arguments", f.name)
		}
	}
	if cfg.Timeout, err = decodeString("exec", fields, "timeout"); err != nil {
		return ExecConfig{}, err
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration; the error names the field at fault.
func (c ExecConfig) Validate() error {
	for _, f := range []struct {
		name string
		argv []string
	}{{"grant", c.Grant}, {"revoke", c.Revoke}} {
		if len(f.argv) == 0 {
			return fmt.Errorf("exec.%s is required: the command that %ss access, e.g. [\"/usr/local/bin/%s-access\"]", f.name, f.name, f.name)
		}
		if !filepath.IsAbs(f.argv[0]) {
			return fmt.Errorf("exec.%s[0] %q must be an absolute path: the command runs without a shell and with a minimal PATH", f.name, f.argv[0])
		}
		for i, a := range f.argv {
			if strings.IndexByte(a, 0) >= 0 {
				return fmt.Errorf("exec.%s[%d] contains a NUL byte", f.name, i)
			}
		}
	}
	_, err := parseTimeout("exec", c.Timeout, DefaultExecTimeout)
	return err
}

// Exec is the "exec" broker: it runs the configured grant and revoke
// commands directly (no shell) in their own process group, with a
// minimal environment that describes the grant (PATH and
// AIRLOCK_ACCESS_*). It is safe
// for concurrent use; each call runs its own process.
type Exec struct {
	cfg     ExecConfig
	timeout time.Duration
	path    string
}

// NewExec builds an exec broker. env gives the commands' PATH (nil reads
// the process environment; an empty PATH becomes DefaultPath). The
// commands are not looked for until they run.
func NewExec(cfg ExecConfig, env broker.Env) (*Exec, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	timeout, _ := parseTimeout("exec", cfg.Timeout, DefaultExecTimeout)
	if env == nil {
		env = os.Getenv
	}
	path := env("PATH")
	if path == "" {
		path = DefaultPath
	}
	return &Exec{cfg: cfg, timeout: timeout, path: path}, nil
}

// environ is the whole environment of a command for g: PATH and the
// AIRLOCK_ACCESS_* variables, plus AIRLOCK_ACCESS_HANDLE when revoking
// (handle != nil). Nothing else of airlock's environment is passed. A
// value holding a NUL byte, which no environment can carry, is an error.
func environ(path string, g broker.Grant, handle *string) ([]string, error) {
	env := []string{
		"PATH=" + path,
		"AIRLOCK_ACCESS_ID=" + g.ID,
		"AIRLOCK_ACCESS_REQUESTER=" + g.Requester,
		"AIRLOCK_ACCESS_ENVIRONMENT=" + g.Environment,
		"AIRLOCK_ACCESS_RESOURCE=" + g.Resource,
		"AIRLOCK_ACCESS_ROLE=" + g.Role,
		"AIRLOCK_ACCESS_GRANTS=" + strings.Join(g.Grants, ","),
		"AIRLOCK_ACCESS_NOT_BEFORE=" + rfc3339(g.NotBefore),
		"AIRLOCK_ACCESS_NOT_AFTER=" + rfc3339(g.NotAfter),
		"AIRLOCK_ACCESS_PUBLIC_KEY=" + g.PublicKey,
	}
	if handle != nil {
		env = append(env, "AIRLOCK_ACCESS_HANDLE="+*handle)
	}
	for _, kv := range env {
		if strings.IndexByte(kv, 0) >= 0 {
			name, _, _ := strings.Cut(kv, "=")
			return nil, fmt.Errorf("%s contains a NUL byte", name)
		}
	}
	return env, nil
}

// Grant runs the grant command and parses its stdout with ParseAnswer.
// A non-zero exit, a timeout (the whole process group is killed), or
// output that ParseAnswer refuses is an error quoting at most the last
// MaxStderrQuote bytes of stderr, never stdout. The command must be
// idempotent by AIRLOCK_ACCESS_ID: a crashed grant is granted again.
func (e *Exec) Grant(ctx context.Context, g broker.Grant) (broker.Issued, error) {
	for _, gr := range g.Grants {
		// Refused here, not at revocation: what was never granted must
		// still revoke.
		if strings.Contains(gr, ",") {
			return broker.Issued{}, fmt.Errorf("exec grant: grant %q contains a comma, which separates the grants in AIRLOCK_ACCESS_GRANTS", gr)
		}
	}
	env, err := environ(e.path, g, nil)
	if err != nil {
		return broker.Issued{}, fmt.Errorf("exec grant: %w", err)
	}
	stdout := &capBuffer{max: MaxAnswerBytes}
	stderr, err := e.run(ctx, e.cfg.Grant, env, stdout)
	if err != nil {
		return broker.Issued{}, fmt.Errorf("exec grant: %w", err)
	}
	if stdout.over {
		return broker.Issued{}, fmt.Errorf("exec grant: the command %s printed more than %d bytes on stdout%s", e.cfg.Grant[0], MaxAnswerBytes, stderr)
	}
	iss, err := ParseAnswer(stdout.buf)
	if err != nil {
		return broker.Issued{}, fmt.Errorf("exec grant: the output of %s: %v%s", e.cfg.Grant[0], err, stderr)
	}
	return iss, nil
}

// Revoke runs the revoke command with AIRLOCK_ACCESS_HANDLE set to
// handle. Exit status 0 is success (the command must also exit 0 when
// the access is already gone); its stdout is discarded. Errors are as
// Grant's.
func (e *Exec) Revoke(ctx context.Context, g broker.Grant, handle string) error {
	env, err := environ(e.path, g, &handle)
	if err != nil {
		return fmt.Errorf("exec revoke: %w", err)
	}
	if _, err := e.run(ctx, e.cfg.Revoke, env, nil); err != nil {
		return fmt.Errorf("exec revoke: %w", err)
	}
	return nil
}

// run runs argv with env, its stdin empty and its stdout into stdout (nil
// discards it). On success it returns the quoted end of stderr, to add to
// a later error; on failure that quote is in the error.
func (e *Exec) run(ctx context.Context, argv, env []string, stdout *capBuffer) (string, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, e.timeout, errTimedOut)
	defer cancel()
	stderr := &tailBuffer{max: MaxStderrQuote}
	var cmd *exec.Cmd
	var err error
	for try := 1; ; try++ {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		if stdout != nil {
			cmd.Stdout = stdout
		}
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error {
			// The negative pid is the process group: the command and
			// everything it started that stayed in its group.
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		cmd.WaitDelay = waitDelay
		err = cmd.Start()
		// ETXTBSY: a just-written program can still be open for writing
		// in a child forked by this process meanwhile, until that child
		// execs (golang.org/issue/22315). It passes in milliseconds.
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try) * 10 * time.Millisecond):
		}
	}
	if err != nil {
		return "", fmt.Errorf("start %s: %v", argv[0], unwrapPath(err))
	}
	err = cmd.Wait()
	quote := stderr.quote()
	switch {
	case err == nil: // finished, even if the deadline passed meanwhile
		return quote, nil
	case errors.Is(context.Cause(ctx), errTimedOut):
		return "", fmt.Errorf("the command %s did not finish within %s and was killed%s", argv[0], e.timeout, quote)
	case ctx.Err() != nil:
		return "", fmt.Errorf("the command %s was stopped: %v%s", argv[0], ctx.Err(), quote)
	case errors.Is(err, exec.ErrWaitDelay):
		// What holds the output open is alive, so the group still exists
		// and its id is not reused: end it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return "", fmt.Errorf("the command %s exited, but something it started kept its output open; redirect the output of background processes%s", argv[0], quote)
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return "", fmt.Errorf("the command %s %s%s", argv[0], exitText(ee), quote)
	}
	return "", fmt.Errorf("the command %s: %v%s", argv[0], err, quote)
}

var errTimedOut = errors.New("the broker's timeout passed")

func exitText(ee *exec.ExitError) string {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exited with status %d", ee.ExitCode())
}

// unwrapPath drops the *PathError/*exec.Error wrapping whose text repeats
// the path.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	if ee, ok := errors.AsType[*exec.Error](err); ok {
		return ee.Err
	}
	return err
}

// capBuffer keeps the first max bytes written and notes whether more
// came; it never fails a write, so the command is never blocked or
// broken by a full pipe.
type capBuffer struct {
	max  int
	buf  []byte
	over bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	n, room := len(p), b.max-len(b.buf)
	if n > room {
		b.over = true
		p = p[:room]
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// quote is "; stderr ends: "..."" for the kept bytes, or "" when there
// are none.
func (b *tailBuffer) quote() string {
	s := strings.TrimSpace(string(b.buf))
	if s == "" {
		return ""
	}
	return fmt.Sprintf("; stderr ends: %q", s)
}
