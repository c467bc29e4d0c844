package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one running process of an instance.
type proc struct {
	pid       int
	ticks     uint64
	port      int
	startedAt time.Time
	adopted   bool
	exited    <-chan string // receives how the process ended, once
}

type outcome int

const (
	outExited outcome = iota
	outStop
	outDetach
)

// run is the life of one instance: start (or adopt) a process, watch it,
// restart it with backoff when it crashes, give up after too many quick
// crashes, stop it when asked. It returns when the instance is stopped or
// failed, or when the supervisor is closed (leaving the process running).
func (s *Supervisor) run(in *instance, adopted *proc) {
	defer s.wg.Done()
	defer close(in.done)
	portRetries := 0
	for {
		p := adopted
		adopted = nil
		if p == nil {
			var err error
			p, err = s.start(in)
			if err != nil {
				s.fail(in, err.Error())
				return
			}
		}
		out, exit := s.watch(in, p)
		switch out {
		case outDetach:
			return
		case outStop:
			s.terminate(in, p)
			s.mu.Lock()
			in.gen++
			in.state, in.reason, in.pid, in.port = StateStopped, "stopped on request", 0, 0
			s.notifyLocked()
			s.mu.Unlock()
			return
		}

		// The process exited on its own. Whatever else is left in its
		// process group goes too, so that nothing keeps the port.
		signalGroup(p.pid, syscall.SIGKILL)
		now := s.now()
		portTaken := !p.adopted && now.Sub(p.startedAt) < portCheckWindow && portBusy(p.port)
		s.releasePort(p.port)
		stderr, _ := TailLog(in.logs().Stderr, 5)

		for i, l := range stderr {
			if len(l) > 300 {
				stderr[i] = l[:300] + "..."
			}
		}

		s.mu.Lock()
		in.gen++
		in.lastExit = exit
		in.pid, in.port = 0, 0
		attrs := []any{slog.String("instance", in.id), slog.Int("pid", p.pid), slog.Int("port", p.port), slog.String("exit", exit)}
		if portTaken && portRetries < s.opts.PortRetries {
			portRetries++
			in.restarts++
			in.state = StateStarting
			in.reason = fmt.Sprintf("port %d was taken by another process (%s); starting again on another port", p.port, exit)
			s.notifyLocked()
			s.mu.Unlock()
			s.log.Warn("instance lost its port, retrying on another", attrs...)
			continue
		}
		if !in.healthySince.IsZero() {
			portRetries = 0
		}
		dec := s.opts.Backoff.Next(Crash{Before: in.crashes, HealthySince: in.healthySince, At: now})
		in.crashes = dec.Crashes
		if dec.Fail {
			in.state = StateFailed
			in.reason = fmt.Sprintf("crashed %d times in a row; last exit: %s", dec.Crashes, exit)
			if len(stderr) > 0 {
				in.reason += "; last stderr: " + strings.Join(stderr, " | ")
			}
			s.persistLocked(in.u)
			s.notifyLocked()
			s.mu.Unlock()
			s.log.Error("instance failed", append(attrs, slog.String("reason", in.reason))...)
			return
		}
		in.state = StateBackoff
		in.reason = fmt.Sprintf("exited (%s); restart %d in %s", exit, dec.Crashes, dec.Delay)
		if len(stderr) > 0 {
			in.reason += "; last stderr: " + stderr[len(stderr)-1]
		}
		s.persistLocked(in.u)
		s.notifyLocked()
		s.mu.Unlock()
		s.log.Warn("instance exited, restarting after backoff", append(attrs, slog.Duration("delay", dec.Delay))...)

		t := time.NewTimer(dec.Delay)
		select {
		case <-t.C:
		case <-in.stop:
			t.Stop()
			s.mu.Lock()
			in.state, in.reason = StateStopped, "stopped on request"
			s.notifyLocked()
			s.mu.Unlock()
			return
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		s.mu.Lock()
		in.restarts++
		s.mu.Unlock()
	}
}

// fail marks the instance failed for a reason that no restart cures.
func (s *Supervisor) fail(in *instance, reason string) {
	s.mu.Lock()
	in.gen++
	in.state, in.reason, in.pid, in.port = StateFailed, reason, 0, 0
	s.persistLocked(in.u)
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Error("instance failed", slog.String("instance", in.id), slog.String("reason", reason))
}

// start verifies the artifact and starts a process for the instance on a
// fresh port. Its errors are permanent (the instance fails).
func (s *Supervisor) start(in *instance) (*proc, error) {
	s.mu.Lock()
	spec := in.u.spec
	s.mu.Unlock()
	exe, err := s.artifacts.Executable(spec.Digest, spec.Entrypoint)
	if err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	work := filepath.Join(in.dir, "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	port, err := s.reservePort()
	if err != nil {
		return nil, err
	}
	stdout, err := openLog(in.logs().Stdout)
	if err != nil {
		s.releasePort(port)
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer stdout.Close()
	stderr, err := openLog(in.logs().Stderr)
	if err != nil {
		s.releasePort(port)
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer stderr.Close()

	var cmd *exec.Cmd
	for try := 1; ; try++ {
		cmd = exec.Command(exe, spec.Args...)
		cmd.Dir = work
		cmd.Env = s.environ(spec, port, work)
		cmd.Stdout = stdout
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
		// ETXTBSY: a just-stored artifact can still be open for writing
		// in a child forked by this process meanwhile, until that child
		// execs (golang.org/issue/22315). It passes in milliseconds.
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			break
		}
		time.Sleep(time.Duration(try) * 10 * time.Millisecond)
	}
	if err != nil {
		s.releasePort(port)
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	// The child is not reaped before Wait below, so its stat is readable.
	_, ticks, _ := procStat(cmd.Process.Pid)
	exited := make(chan string, 1)
	go func() {
		err := cmd.Wait()
		if cmd.ProcessState != nil {
			exited <- cmd.ProcessState.String()
		} else {
			exited <- err.Error()
		}
	}()
	p := &proc{pid: cmd.Process.Pid, ticks: ticks, port: port, startedAt: s.now(), exited: exited}

	s.mu.Lock()
	in.gen++
	in.pid, in.ticks, in.port, in.digest = p.pid, p.ticks, p.port, spec.Digest
	in.startedAt, in.healthySince, in.healthFails, in.adopted = p.startedAt, time.Time{}, 0, false
	in.state = StateStarting
	if in.reason == "" || !strings.HasPrefix(in.reason, "port ") {
		in.reason = "waiting for the first health check to pass"
	}
	s.persistLocked(in.u)
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Info("instance started", slog.String("instance", in.id), slog.Int("pid", p.pid), slog.Int("port", port), slog.String("digest", spec.Digest))
	return p, nil
}

// environ is the whole environment of an instance: the spec's variables and
// secrets, PORT, HOME and PATH. Nothing of airlock's own environment leaks.
func (s *Supervisor) environ(spec Spec, port int, home string) []string {
	env := map[string]string{"PATH": s.opts.Path}
	for k, v := range spec.Vars {
		env[k] = v
	}
	for k, v := range spec.Secrets {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(port)
	env["HOME"] = home
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// watch waits for the process to exit, a stop request or the supervisor's
// close, running health checks and log rotation meanwhile.
func (s *Supervisor) watch(in *instance, p *proc) (outcome, string) {
	s.mu.Lock()
	gen := in.gen
	hp := in.u.spec.HealthPath
	s.mu.Unlock()
	hctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.wg.Add(1)
	go s.healthLoop(hctx, in, gen, p.port, hp)
	tick := time.NewTicker(s.opts.LogCheckInterval)
	defer tick.Stop()
	for {
		select {
		case exit := <-p.exited:
			return outExited, exit
		case <-in.stop:
			return outStop, ""
		case <-s.ctx.Done():
			return outDetach, ""
		case <-tick.C:
			s.rotateLogs(in)
		}
	}
}

func (s *Supervisor) rotateLogs(in *instance) {
	lp := in.logs()
	for _, f := range []string{lp.Stdout, lp.Stderr} {
		if _, err := rotateLog(f, s.opts.LogMaxBytes); err != nil {
			s.log.Warn("log rotation failed", slog.String("instance", in.id), slog.String("file", f), slog.Any("error", err))
		}
	}
}

// terminate stops the process group: SIGTERM, then SIGKILL after the
// spec's StopGrace, then SIGKILL to whatever is left in the group.
func (s *Supervisor) terminate(in *instance, p *proc) {
	s.mu.Lock()
	grace := in.u.spec.StopGrace
	s.mu.Unlock()
	defer s.releasePort(p.port)
	if p.adopted && !alive(p.pid, p.ticks) {
		return
	}
	if err := signalGroup(p.pid, syscall.SIGTERM); err != nil {
		s.log.Warn("SIGTERM failed", slog.String("instance", in.id), slog.Any("error", err))
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	exited := p.exited
	if p.adopted {
		// The poller behind p.exited ends with the supervisor; a stop
		// finishes regardless.
		exited = s.pollExit(p)
	}
	select {
	case <-exited:
	case <-t.C:
		s.log.Warn("instance ignored SIGTERM, killing it", slog.String("instance", in.id), slog.Int("pid", p.pid), slog.Duration("grace", grace))
		if !p.adopted || alive(p.pid, p.ticks) {
			signalGroup(p.pid, syscall.SIGKILL)
		}
		if !p.adopted {
			// Our child is not reaped before exited reports, so its pid
			// is still its own: kill it even if it left its group.
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
		<-exited
	}
	signalGroup(p.pid, syscall.SIGKILL)
	s.mu.Lock()
	in.lastExit = "stopped"
	s.mu.Unlock()
}

// healthLoop checks GET http://127.0.0.1:port<path> every HealthInterval
// until ctx ends.
func (s *Supervisor) healthLoop(ctx context.Context, in *instance, gen, port int, path string) {
	defer s.wg.Done()
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path
	t := time.NewTicker(s.opts.HealthInterval)
	defer t.Stop()
	for {
		err := s.probe(ctx, url)
		if ctx.Err() != nil {
			return
		}
		s.recordHealth(in, gen, url, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Supervisor) probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "airlock-health-check")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

func (s *Supervisor) recordHealth(in *instance, gen int, url string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.gen != gen || s.closed {
		return
	}
	if err == nil {
		in.healthFails = 0
		if in.state != StateHealthy {
			in.state, in.reason = StateHealthy, ""
			if in.healthySince.IsZero() {
				in.healthySince = s.now()
			}
			s.notifyLocked()
			s.log.Info("instance healthy", slog.String("instance", in.id), slog.Int("pid", in.pid), slog.Int("port", in.port))
		}
		return
	}
	in.healthFails++
	in.reason = fmt.Sprintf("health check GET %s failed %d time(s) in a row: %v", url, in.healthFails, err)
	if in.state == StateHealthy && in.healthFails >= s.opts.UnhealthyAfter {
		in.state = StateUnhealthy
		s.log.Warn("instance unhealthy", slog.String("instance", in.id), slog.String("reason", in.reason))
	}
	s.notifyLocked()
}

// reservePort finds a free port on 127.0.0.1 that no instance of this
// supervisor uses. Another process may still take it before the instance
// binds it; run detects that and retries on another port.
func (s *Supervisor) reservePort() (int, error) {
	for range 20 {
		var port int
		var err error
		if s.opts.pickPort != nil {
			port, err = s.opts.pickPort()
		} else {
			port, err = freePort()
		}
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		s.mu.Lock()
		if !s.ports[port] {
			s.ports[port] = true
			s.mu.Unlock()
			return port, nil
		}
		s.mu.Unlock()
	}
	return 0, errors.New("find a free port: no free port after 20 tries")
}

func (s *Supervisor) releasePort(port int) {
	s.mu.Lock()
	delete(s.ports, port)
	s.mu.Unlock()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portBusy reports whether another process listens on 127.0.0.1:port.
func portBusy(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return errors.Is(err, syscall.EADDRINUSE)
	}
	ln.Close()
	return false
}

// pollExit reports when the adopted process p is gone.
func (s *Supervisor) pollExit(p *proc) <-chan string {
	ch := make(chan string, 1)
	go func() {
		for alive(p.pid, p.ticks) {
			time.Sleep(s.opts.AdoptPollInterval)
		}
		ch <- "unknown (adopted process exited)"
	}()
	return ch
}

// watchAdopted reports the exit of a process that is not our child by
// polling /proc; it ends with ctx.
func (s *Supervisor) watchAdopted(ctx context.Context, pid int, ticks uint64) <-chan string {
	ch := make(chan string, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opts.AdoptPollInterval)
		defer t.Stop()
		for {
			if !alive(pid, ticks) {
				ch <- "unknown (adopted process exited)"
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

// Persistence: one JSON record per unit at units/<app>/<env>/<version>/unit.json.

type unitRecord struct {
	Spec      Spec             `json:"spec"`
	Stopping  bool             `json:"stopping,omitempty"`
	Instances []instanceRecord `json:"instances"`
}

type instanceRecord struct {
	Index      int       `json:"index"`
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"`
	Port       int       `json:"port"`
	Digest     string    `json:"digest"`
	StartedAt  time.Time `json:"started_at"`
	Restarts   int       `json:"restarts"`
	Crashes    int       `json:"crashes"`
	State      State     `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	LastExit   string    `json:"last_exit,omitempty"`
	Stopping   bool      `json:"stopping,omitempty"`
}

// persistLocked writes the unit's record (mode 0600). It names the secrets
// but never holds their values: those live only in memory, and after a
// restart the next Ensure supplies them again. s.mu is held. A failure is
// logged: the processes run regardless.
func (s *Supervisor) persistLocked(u *unit) {
	if s.closed {
		return
	}
	rec := unitRecord{Spec: withoutSecretValues(u.spec), Stopping: u.stopping}
	for _, in := range u.instances {
		rec.Instances = append(rec.Instances, instanceRecord{
			Index: in.index, PID: in.pid, StartTicks: in.ticks, Port: in.port, Digest: in.digest,
			StartedAt: in.startedAt, Restarts: in.restarts, Crashes: in.crashes, State: in.state,
			Reason: in.reason, LastExit: in.lastExit, Stopping: in.stopping,
		})
	}
	if err := writeJSON(filepath.Join(u.dir, "unit.json"), rec); err != nil {
		s.log.Error("cannot record deployment", slog.String("unit", u.key.String()), slog.Any("error", err))
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// recover loads the records of an earlier supervisor: live processes are
// adopted, dead ones started again, failed ones stay failed, and processes
// of units or instances that were being stopped are killed.
func (s *Supervisor) recover() error {
	files, err := filepath.Glob(filepath.Join(s.opts.Dir, "units", "*", "*", "*", "unit.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("local runtime: %w", err)
		}
		var rec unitRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("local runtime: record %s: %w", f, err)
		}
		spec, err := rec.Spec.normalize()
		if err != nil {
			return fmt.Errorf("local runtime: record %s: %w", f, err)
		}
		k := unitKey{spec.App, spec.Env, spec.Version}
		if s.unitDir(k) != filepath.Dir(f) {
			return fmt.Errorf("local runtime: record %s is for %s", f, k)
		}
		if rec.Stopping {
			for _, ir := range rec.Instances {
				killRecorded(ir)
			}
			os.Remove(f)
			s.log.Info("finished the stop of a deployment", slog.String("unit", k.String()))
			continue
		}
		u := &unit{key: k, dir: filepath.Dir(f), spec: spec, needSecrets: len(spec.Secrets) > 0, secretsReady: make(chan struct{})}
		s.mu.Lock()
		s.units[k] = u
		for _, ir := range rec.Instances {
			if ir.Stopping {
				killRecorded(ir)
				continue
			}
			in := s.newInstanceLocked(u, ir.Index)
			in.restarts, in.crashes, in.lastExit, in.digest = ir.Restarts, ir.Crashes, ir.LastExit, ir.Digest
			u.instances = append(u.instances, in)
			attrs := []any{slog.String("instance", in.id), slog.Int("pid", ir.PID), slog.Int("port", ir.Port)}
			switch {
			case ir.State == StateFailed:
				in.state, in.reason = StateFailed, ir.Reason
				close(in.done)
			case ir.Digest == spec.Digest && ir.PID > 0 && ir.StartTicks != 0 && alive(ir.PID, ir.StartTicks):
				p := &proc{pid: ir.PID, ticks: ir.StartTicks, port: ir.Port, startedAt: ir.StartedAt, adopted: true}
				p.exited = s.watchAdopted(s.ctx, p.pid, p.ticks)
				in.pid, in.ticks, in.port, in.startedAt, in.adopted = p.pid, p.ticks, p.port, p.startedAt, true
				in.state, in.reason = StateStarting, "adopted; waiting for the first health check to pass"
				in.gen++
				s.ports[p.port] = true
				s.wg.Add(1)
				go s.run(in, p)
				s.log.Info("instance adopted", attrs...)
			default:
				if ir.Digest != spec.Digest {
					killRecorded(ir) // a process of other bytes must not linger
				}
				if ir.PID > 0 {
					in.restarts++
					in.lastExit = "unknown (exited while airlock was not running)"
				}
				s.wg.Add(1)
				if u.needSecrets {
					in.state, in.reason = StateBackoff, "waiting for airlock to supply its secrets (they are never written to disk)"
					go s.awaitSecrets(in, u.secretsReady)
					s.log.Info("instance was not running; it starts when its secrets are supplied", attrs...)
					continue
				}
				go s.run(in, nil)
				s.log.Info("instance was not running, starting it", attrs...)
			}
		}
		sort.Slice(u.instances, func(i, j int) bool { return u.instances[i].index < u.instances[j].index })
		// An Ensure cut short after recording a larger replica count.
		for i := len(u.instances); i < spec.Replicas; i++ {
			in := s.newInstanceLocked(u, i)
			u.instances = append(u.instances, in)
			s.wg.Add(1)
			if u.needSecrets {
				in.state, in.reason = StateBackoff, "waiting for airlock to supply its secrets (they are never written to disk)"
				go s.awaitSecrets(in, u.secretsReady)
				continue
			}
			go s.run(in, nil)
		}
		s.persistLocked(u)
		s.mu.Unlock()
	}
	return nil
}

// awaitSecrets holds a recovered instance whose secrets are not known
// until an Ensure supplies them (ready closes), then runs it; a stop
// request or the supervisor closing ends it first. s.wg was added to.
func (s *Supervisor) awaitSecrets(in *instance, ready <-chan struct{}) {
	select {
	case <-ready:
		s.run(in, nil)
	case <-in.stop:
		s.mu.Lock()
		in.state, in.reason = StateStopped, ""
		s.notifyLocked()
		s.mu.Unlock()
		close(in.done)
		s.wg.Done()
	case <-s.ctx.Done():
		close(in.done)
		s.wg.Done()
	}
}

// killRecorded kills the process group of a recorded process if it is still
// the same process.
func killRecorded(ir instanceRecord) {
	if ir.PID > 0 && ir.StartTicks != 0 && alive(ir.PID, ir.StartTicks) {
		signalGroup(ir.PID, syscall.SIGKILL)
	}
}
