// Package replicas runs several `airlock server` processes on one
// PostgreSQL database, for the failover test and bench/failover: start
// them, find the leader, kill it with SIGKILL, and time the takeover.
package replicas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/airlock-dev/airlock/internal/cluster"
)

// Set is a group of replicas sharing a database and a signing key.
type Set struct {
	Binary, DatabaseURL, Dir string
	Procs                    []*Proc
	Token                    string
	client                   *http.Client
}

// Proc is one replica process.
type Proc struct {
	Index int
	Addr  string
	Data  string
	Log   string
	cmd   *exec.Cmd
	exit  chan struct{}
}

// Alive reports whether the process still runs.
func (p *Proc) Alive() bool {
	select {
	case <-p.exit:
		return false
	default:
		return true
	}
}

// Start runs n replicas of binary on the database at url, each with its
// own data directory under dir, and waits until all serve and one leads.
func Start(ctx context.Context, binary, url, dir string, n int) (*Set, error) {
	s := &Set{Binary: binary, DatabaseURL: url, Dir: dir, client: &http.Client{Timeout: 2 * time.Second}}
	for i := range n {
		p := &Proc{Index: i, Data: filepath.Join(dir, fmt.Sprintf("replica-%d", i)), Log: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i))}
		s.Procs = append(s.Procs, p)
		if err := s.start(p); err != nil {
			s.Stop()
			return nil, err
		}
		if i == 0 { // the first one bootstraps the admin token
			tok, err := waitFile(ctx, filepath.Join(p.Data, "admin.token"))
			if err != nil {
				s.Stop()
				return nil, err
			}
			s.Token = strings.TrimSpace(tok)
		}
	}
	for _, p := range s.Procs {
		if err := s.waitReady(ctx, p); err != nil {
			s.Stop()
			return nil, err
		}
	}
	if _, _, err := s.WaitLeader(ctx, 30*time.Second, ""); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *Set) start(p *Proc) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p.Addr = addr
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(s.Binary, "server", "--data", p.Data, "--listen", addr, "--database", s.DatabaseURL,
		"--signing-key", filepath.Join(s.Dir, "audit.key"), "--seal-key", filepath.Join(s.Dir, "seal.key"), "--log-level", "info")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start replica %d: %w", p.Index, err)
	}
	p.exit = make(chan struct{})
	go func() { p.cmd.Wait(); logf.Close(); close(p.exit) }()
	return nil
}

func waitFile(ctx context.Context, path string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return string(b), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not appear in 30s", path)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Set) waitReady(ctx context.Context, p *Proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.client.Get("http://" + p.Addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if !p.Alive() {
			log, _ := os.ReadFile(p.Log)
			return fmt.Errorf("replica %d exited: %s", p.Index, tail(string(log)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %d not ready in 30s", p.Index)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// Status asks a live replica for the cluster's status.
func (s *Set) Status(ctx context.Context) ([]cluster.Replica, error) {
	var errs []error
	for _, p := range s.Procs {
		if !p.Alive() {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/api/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := s.client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var out struct {
			Replicas []cluster.Replica `json:"replicas"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			errs = append(errs, fmt.Errorf("replica %d: status %d: %v", p.Index, resp.StatusCode, err))
			continue
		}
		return out.Replicas, nil
	}
	return nil, fmt.Errorf("no replica answered: %w", errors.Join(errs...))
}

// WaitLeader waits until a replica other than not leads, and returns it
// and how long the wait took.
func (s *Set) WaitLeader(ctx context.Context, timeout time.Duration, not string) (cluster.Replica, time.Duration, error) {
	start := time.Now()
	for {
		rs, err := s.Status(ctx)
		if err == nil {
			for _, r := range rs {
				if r.Leader && r.ID != not {
					return r, time.Since(start), nil
				}
			}
		}
		if time.Since(start) > timeout {
			return cluster.Replica{}, time.Since(start), fmt.Errorf("no new leader after %s (last status %+v, %v)", timeout, rs, err)
		}
		select {
		case <-ctx.Done():
			return cluster.Replica{}, time.Since(start), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ProcOf returns the process serving at r's address.
func (s *Set) ProcOf(r cluster.Replica) *Proc {
	for _, p := range s.Procs {
		if p.Addr == r.Address {
			return p
		}
	}
	return nil
}

// Kill sends SIGKILL to a replica's process group and waits for it to
// exit.
func (s *Set) Kill(p *Proc) {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exit
}

// Restart starts a killed replica again on a new address.
func (s *Set) Restart(ctx context.Context, p *Proc) error {
	if err := s.start(p); err != nil {
		return err
	}
	return s.waitReady(ctx, p)
}

// Stop ends every replica gracefully (SIGTERM, then SIGKILL after 10 s).
func (s *Set) Stop() {
	for _, p := range s.Procs {
		if p.cmd != nil && p.Alive() {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	for _, p := range s.Procs {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.exit:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exit
		}
	}
}

// Run runs the airlock CLI against a live replica with token and returns
// its standard output; a failure's error holds the standard error.
func (s *Set) Run(token string, args ...string) (string, error) {
	var addr string
	for _, p := range s.Procs {
		if p.Alive() {
			addr = p.Addr
			break
		}
	}
	cmd := exec.Command(s.Binary, args...)
	cmd.Env = append(os.Environ(), "AIRLOCK_SERVER=http://"+addr, "AIRLOCK_TOKEN="+token)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("airlock %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}
