package local

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestInstancesServeOnTheirPortsAndScale(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 3)
	ins := ensureHealthy(t, s, spec)
	if len(ins) != 3 {
		t.Fatalf("%d instances, want 3", len(ins))
	}
	ports := map[int]bool{}
	for _, in := range ins {
		if in.State != StateHealthy || in.PID == 0 || in.Address != fmt.Sprintf("127.0.0.1:%d", in.Port) {
			t.Fatalf("instance %+v", in)
		}
		ports[in.Port] = true
		if code, body := httpGet(t, in.Address, "/"); code != 200 || body != "version v1\n" {
			t.Fatalf("GET %s/ = %d %q", in.Address, code, body)
		}
	}
	if len(ports) != 3 {
		t.Fatalf("instances share ports: %v", ports)
	}
	if got := len(s.List()); got != 3 {
		t.Fatalf("List has %d instances, want 3", got)
	}

	// Scale down to one: the highest indexes go, and their processes exit.
	spec.Replicas = 1
	after := ensureHealthy(t, s, spec)
	if len(after) != 1 || after[0].PID != ins[0].PID {
		t.Fatalf("after scale down: %+v, want only instance 0 (pid %d)", after, ins[0].PID)
	}
	for _, in := range ins[1:] {
		if alive(in.PID, 0) {
			t.Errorf("pid %d of a removed instance still runs", in.PID)
		}
	}
	// And up again.
	spec.Replicas = 2
	if got := ensureHealthy(t, s, spec); len(got) != 2 || got[0].PID != ins[0].PID {
		t.Fatalf("after scale up: %+v", got)
	}
}

func TestEnsureWithNewSpecReplacesInstances(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 1)
	before := ensureHealthy(t, s, spec)
	spec.Args = []string{"--version", "v1-patched"}
	after := ensureHealthy(t, s, spec)
	if after[0].PID == before[0].PID {
		t.Fatal("the instance was not replaced after its arguments changed")
	}
	if _, body := httpGet(t, after[0].Address, "/"); body != "version v1-patched\n" {
		t.Fatalf("body %q", body)
	}
}

func TestEnsureRefusesBadSpecAndUnknownArtifact(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	ctx := context.Background()
	unknown := "sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"unknown artifact", demoSpec(unknown, "v1", 1), "not in the store"},
		{"bad app name", Spec{App: "../x", Env: "dev", Version: "v1", Digest: testDigest}, "app"},
		{"PORT set", Spec{App: "a", Env: "dev", Version: "v1", Digest: testDigest, Vars: map[string]string{"PORT": "1"}}, "PORT"},
		{"secret and var clash", Spec{App: "a", Env: "dev", Version: "v1", Digest: testDigest, Vars: map[string]string{"X": "1"}, Secrets: map[string]string{"X": "2"}}, "both"},
		{"negative replicas", Spec{App: "a", Env: "dev", Version: "v1", Digest: testDigest, Replicas: -1}, "negative"},
	}
	for _, tt := range tests {
		err := s.Ensure(ctx, tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Ensure = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if n := len(s.List()); n != 0 {
		t.Fatalf("%d instances after refused specs", n)
	}
}

func TestTamperedArtifactIsNotRun(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	p, _ := s.Artifacts().Path(testDigest)
	// Flip one byte of the stored copy (same size, same inode).
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		os.Chmod(p, 0o700)
		f, err = os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	var b [1]byte
	f.ReadAt(b[:], 100)
	b[0] ^= 0xff
	f.WriteAt(b[:], 100)
	f.Close()
	err = s.Ensure(context.Background(), demoSpec(testDigest, "v1", 1))
	var mm *DigestMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("Ensure on tampered bytes = %v, want a DigestMismatchError", err)
	}
	if n := len(s.List()); n != 0 {
		t.Fatalf("%d instances started from tampered bytes", n)
	}
}

// TestRestartReverifiesTheArtifact: bytes changed after a successful start
// are refused at the next (re)start.
func TestRestartReverifiesTheArtifact(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	in := ensureHealthy(t, s, demoSpec(testDigest, "v1", 1))[0]
	// A running executable cannot be written to ("text file busy"), but it
	// can be replaced.
	p, _ := s.Artifacts().Path(testDigest)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".evil", append(b, "trailing bytes"...), 0o500); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".evil", p); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(in.PID, syscall.SIGKILL)
	var now Instance
	eventually(t, "the instance is failed", func() bool {
		now = s.Instances("shop", "dev", "v1")[0]
		return now.State == StateFailed
	})
	if !strings.Contains(now.Reason, "digest mismatch") || now.PID != 0 {
		t.Fatalf("instance %+v, want failed on the digest mismatch with no process", now)
	}
	err = s.WaitHealthy(context.Background(), "shop", "dev", "v1")
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("WaitHealthy = %v, want the digest mismatch", err)
	}
}

func TestTarGzArtifactRuns(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	// The entrypoint is a script that execs the test binary (packing the
	// binary itself would make this test slow); what matters is that the
	// runtime unpacks the tarball and runs its single executable.
	tgz := tarGz(t, []tarEntry{
		{name: "shop/bin/shop", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\nexec " + testBinary + " \"$@\"\n"},
		{name: "shop/config.txt", typ: tar.TypeReg, mode: 0o644, body: "x"},
	})
	d := digestOf(tgz)
	if _, err := s.Put(strings.NewReader(string(tgz)), d); err != nil {
		t.Fatal(err)
	}
	ins := ensureHealthy(t, s, demoSpec(d, "v2", 1))
	if _, body := httpGet(t, ins[0].Address, "/"); body != "version v2\n" {
		t.Fatalf("body %q", body)
	}
	exe, _ := s.Artifacts().Executable(d, "")
	if !strings.HasSuffix(exe, "/shop/bin/shop") {
		t.Fatalf("entrypoint %s", exe)
	}
}

func TestEnvironmentIsOnlyTheSpecs(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "env", "FEATURE": "on"}
	spec.Secrets = map[string]string{"DB_PASSWORD": "hunter2"}
	in := ensureHealthy(t, s, spec)[0]
	if os.Getenv("AIRLOCK_TOKEN") == "" {
		t.Fatal("test setup: AIRLOCK_TOKEN is not set in the supervisor's environment")
	}
	got := map[string]string{}
	cwd := ""
	for _, line := range strings.Split(readFile(t, in.Logs.Stdout), "\n") {
		if kv, ok := strings.CutPrefix(line, "ENV "); ok {
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		if d, ok := strings.CutPrefix(line, "CWD="); ok {
			cwd = d
		}
	}
	want := map[string]string{
		modeVar: "env", "FEATURE": "on", "DB_PASSWORD": "hunter2",
		"PORT": strconv.Itoa(in.Port), "HOME": in.WorkDir, "PATH": "/usr/local/bin:/usr/bin:/bin",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("child environment\n got %v\nwant %v", got, want)
	}
	if cwd != in.WorkDir {
		t.Fatalf("working directory %q, want %q", cwd, in.WorkDir)
	}
}

func TestCrashIsRestartedWithBackoff(t *testing.T) {
	t.Parallel()
	s, lb := newSupervisor(t, func(o *Options) {
		o.Backoff = BackoffPolicy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, ResetAfter: time.Minute, MaxCrashes: 100}
	})
	spec := demoSpec(testDigest, "v1", 1, "--exit-after", "800ms")
	first := ensureHealthy(t, s, spec)[0]
	var now Instance
	eventually(t, "the instance was restarted twice", func() bool {
		now = s.Instances("shop", "dev", "v1")[0]
		return now.Restarts >= 2
	})
	if now.LastExit != "exit status 1" {
		t.Fatalf("last exit %q, want exit status 1", now.LastExit)
	}
	if now.State == StateFailed {
		t.Fatalf("instance failed: %s", now.Reason)
	}
	if !strings.Contains(lb.String(), "restarting after backoff") {
		t.Fatalf("no backoff in the log:\n%s", lb)
	}
	eventually(t, "the restarted instance is healthy on a new pid", func() bool {
		now = s.Instances("shop", "dev", "v1")[0]
		return now.State == StateHealthy && now.PID != first.PID
	})
	httpGet(t, now.Address, "/")
}

func TestExitAtOnceEndsFailedWithReason(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil) // MaxCrashes 4
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "exit"}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	err := s.WaitHealthy(ctx, "shop", "dev", "v1")
	if err == nil {
		t.Fatal("WaitHealthy = nil for a binary that exits at once")
	}
	for _, want := range []string{"failed", "crashed 4 times", "exit status 3", "boom: cannot connect to the database"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHealthy error %q lacks %q", err, want)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("WaitHealthy waited for the context instead of reporting the failure")
	}
	in := s.Instances("shop", "dev", "v1")[0]
	if in.State != StateFailed || in.Restarts != 3 || in.PID != 0 {
		t.Fatalf("instance %+v, want failed after 3 restarts with no process", in)
	}
	// No hot loop: it stays failed.
	time.Sleep(300 * time.Millisecond)
	if in2 := s.Instances("shop", "dev", "v1")[0]; in2.Restarts != 3 || in2.State != StateFailed {
		t.Fatalf("failed instance kept restarting: %+v", in2)
	}
}

func TestPortTakenMovesToAnotherPort(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	picks := 0
	s, lb := newSupervisor(t, func(o *Options) {
		// The first port handed out is the taken one: the race lost.
		o.pickPort = func() (int, error) {
			picks++
			if picks == 1 {
				return takenPort, nil
			}
			return freePort()
		}
	})
	in := ensureHealthy(t, s, demoSpec(testDigest, "v1", 1))[0]
	if in.Port == takenPort {
		t.Fatal("instance reports the taken port")
	}
	if in.Restarts != 1 || in.State != StateHealthy {
		t.Fatalf("instance %+v, want healthy after one retry", in)
	}
	if !strings.Contains(lb.String(), "lost its port") {
		t.Fatalf("the retry is not logged:\n%s", lb)
	}
	httpGet(t, in.Address, "/")
}

func TestHealthNeverPassingIsNamed(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 1, "--fail-health")
	if err := s.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a health check was answered", func() bool {
		return strings.Contains(s.Instances("shop", "dev", "v1")[0].Reason, "503")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.WaitHealthy(ctx, "shop", "dev", "v1")
	if err == nil {
		t.Fatal("WaitHealthy = nil for an instance whose health check fails")
	}
	for _, want := range []string{"shop/dev/v1/0", "starting", "/healthz", "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the context's error", err)
	}
}

func TestUnhealthyAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, func(o *Options) { o.UnhealthyAfter = 3 })
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "toggle-health"}
	in := ensureHealthy(t, s, spec)[0]
	sick := filepath.Join(in.WorkDir, "unhealthy")
	if err := os.WriteFile(sick, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var now Instance
	eventually(t, "the instance is unhealthy", func() bool {
		now = s.Instances("shop", "dev", "v1")[0]
		return now.State == StateUnhealthy
	})
	if !strings.Contains(now.Reason, "3 time(s) in a row") || !strings.Contains(now.Reason, "503") {
		t.Fatalf("reason %q", now.Reason)
	}
	if now.PID != in.PID || now.Restarts != 0 {
		t.Fatalf("an unhealthy instance was restarted: %+v", now)
	}
	os.Remove(sick)
	eventually(t, "the instance is healthy again", func() bool {
		return s.Instances("shop", "dev", "v1")[0].State == StateHealthy
	})
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	s, lb := newSupervisor(t, nil)
	in := ensureHealthy(t, s, demoSpec(testDigest, "v1", 1))[0]
	changed := s.Changed()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not signalled by Stop")
	}
	if got := s.Instances("shop", "dev", "v1"); len(got) != 0 {
		t.Fatalf("instances after Stop: %+v", got)
	}
	if alive(in.PID, 0) {
		t.Fatal("process still runs after Stop")
	}
	if !strings.Contains(readFile(t, in.Logs.Stdout), `msg="shutting down"`) {
		t.Fatal("the demo app did not shut down on SIGTERM")
	}
	if strings.Contains(lb.String(), "ignored SIGTERM") {
		t.Fatal("a graceful process was killed")
	}
	if _, err := os.Stat(filepath.Join(s.opts.Dir, "units", "shop", "dev", "v1", "unit.json")); !os.IsNotExist(err) {
		t.Fatalf("the record of a stopped unit remains: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	s, lb := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "ignore-term"}
	spec.StopGrace = 300 * time.Millisecond
	in := ensureHealthy(t, s, spec)[0]
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < spec.StopGrace {
		t.Fatalf("Stop returned after %v, before the grace period", d)
	}
	if alive(in.PID, 0) {
		t.Fatal("process ignoring SIGTERM still runs")
	}
	if !strings.Contains(lb.String(), "ignored SIGTERM, killing it") {
		t.Fatalf("no SIGKILL in the log:\n%s", lb)
	}
}

func TestStopKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "spawn"}
	in := ensureHealthy(t, s, spec)[0]
	pidFile := filepath.Join(in.WorkDir, "child.pid")
	child, err := strconv.Atoi(readFile(t, pidFile))
	if err != nil || !alive(child, 0) {
		t.Fatalf("grandchild %d not running: %v", child, err)
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the grandchild is gone", func() bool { return !alive(child, 0) })
}

func TestLogsAreCappedAndTailed(t *testing.T) {
	t.Parallel()
	const capBytes = 8 << 10
	s, _ := newSupervisor(t, func(o *Options) {
		o.LogMaxBytes = capBytes
		o.LogCheckInterval = 20 * time.Millisecond
	})
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "chatty"}
	in := ensureHealthy(t, s, spec)[0] // healthy only after writing ~300 KB
	eventually(t, "the log is rotated below its cap", func() bool {
		fi, err := os.Stat(in.Logs.Stdout)
		return err == nil && fi.Size() <= capBytes
	})
	prev, err := os.Stat(in.Logs.Stdout + ".1")
	if err != nil {
		t.Fatalf("no previous log file: %v", err)
	}
	if prev.Size() > capBytes {
		t.Fatalf("previous log is %d bytes, over the %d cap", prev.Size(), capBytes)
	}
	lines, err := s.Tail(in.ID, "stdout", 50)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(lines, "\n")
	if !strings.Contains(joined, "last line") || !strings.Contains(joined, `msg="listening"`) {
		t.Fatalf("tail lacks the latest lines:\n%s", joined)
	}
	if strings.Contains(joined, "0000 ") {
		t.Fatal("the tail still holds the first line: nothing was rotated away")
	}
}

func TestWaitHealthyUnknownUnit(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	if err := s.WaitHealthy(context.Background(), "nope", "dev", "v1"); err == nil || !strings.Contains(err.Error(), "not deployed") {
		t.Fatalf("WaitHealthy = %v", err)
	}
}

func TestOneSupervisorPerDirectory(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	if _, err := New(Options{Dir: s.opts.Dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second New on the same dir = %v, want an in-use error", err)
	}
}

// TestReadoptionAfterSupervisorCrash runs a first supervisor in another
// process, kills it with SIGKILL, and opens a second on the same directory.
func TestReadoptionAfterSupervisorCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(testBinary)
	cmd.Env = []string{modeVar + "=supervisor", "LOCAL_TEST_DIR=" + dir}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var first []Instance
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the first supervisor printed nothing")
	}
	if err := json.Unmarshal(sc.Bytes(), &first); err != nil || len(first) != 2 {
		t.Fatalf("first supervisor printed %q: %v", sc.Text(), err)
	}
	t.Cleanup(func() { // in case the test fails before the second supervisor owns them
		for _, in := range first {
			if _, ticks, err := procStat(in.PID); err == nil {
				killRecorded(instanceRecord{PID: in.PID, StartTicks: ticks})
			}
		}
	})
	// The crash.
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for _, in := range first {
		if !alive(in.PID, 0) {
			t.Fatalf("instance pid %d died with the supervisor", in.PID)
		}
	}

	opts := fastOptions(dir)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSupervisor(t, s) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.WaitHealthy(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	got := s.Instances("shop", "dev", "v1")
	for i, in := range got {
		if in.PID != first[i].PID || in.Port != first[i].Port || !in.Adopted || in.Restarts != 0 {
			t.Fatalf("instance %d after restart %+v, want the adopted pid %d port %d", i, in, first[i].PID, first[i].Port)
		}
		if _, body := httpGet(t, in.Address, "/"); body != "version v1\n" {
			t.Fatalf("adopted instance answers %q", body)
		}
	}

	// An adopted instance that dies is restarted.
	if err := syscall.Kill(got[1].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var now Instance
	eventually(t, "the killed adopted instance is back and healthy", func() bool {
		now = s.Instances("shop", "dev", "v1")[1]
		return now.PID != got[1].PID && now.PID != 0 && now.State == StateHealthy
	})
	if now.Adopted || now.Restarts != 1 {
		t.Fatalf("restarted instance %+v", now)
	}
	httpGet(t, now.Address, "/")

	// Stopping reaches the adopted process too (it is not our child).
	if err := s.Stop(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	if alive(got[0].PID, 0) {
		t.Fatal("the adopted process survived Stop")
	}
}

// TestDeadInstancesAreStartedByTheNextSupervisor: instances killed while no
// supervisor ran are started again by New.
func TestDeadInstancesAreStartedByTheNextSupervisor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	putTestBinary(t, s1)
	ins := ensureHealthy(t, s1, demoSpec(testDigest, "v1", 2))
	if err := s1.Close(); err != nil { // lets go of the processes, which keep running
		t.Fatal(err)
	}
	if !alive(ins[0].PID, 0) || !alive(ins[1].PID, 0) {
		t.Fatal("Close stopped the processes")
	}
	if err := s1.Ensure(context.Background(), demoSpec(testDigest, "v1", 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ensure after Close = %v, want ErrClosed", err)
	}
	syscall.Kill(-ins[0].PID, syscall.SIGKILL)
	eventually(t, "instance 0 is dead", func() bool { return !alive(ins[0].PID, 0) })

	s2, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSupervisor(t, s2) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s2.WaitHealthy(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	got := s2.Instances("shop", "dev", "v1")
	if got[0].PID == ins[0].PID || got[0].Adopted || got[0].Restarts != 1 {
		t.Fatalf("dead instance 0 was not started again: %+v", got[0])
	}
	if got[1].PID != ins[1].PID || !got[1].Adopted {
		t.Fatalf("live instance 1 was not adopted: %+v", got[1])
	}
}

// editRecord rewrites a unit's record as an airlock that died at an awkward
// moment could have left it.
func editRecord(t *testing.T, dir string, edit func(*unitRecord)) {
	t.Helper()
	path := filepath.Join(dir, "units", "shop", "dev", "v1", "unit.json")
	var rec unitRecord
	if err := json.Unmarshal([]byte(readFile(t, path)), &rec); err != nil {
		t.Fatal(err)
	}
	edit(&rec)
	if err := writeJSON(path, rec); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryFinishesInterruptedChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	putTestBinary(t, s1)
	ins := ensureHealthy(t, s1, demoSpec(testDigest, "v1", 1))
	s1.Close()
	t.Cleanup(func() { syscall.Kill(-ins[0].PID, syscall.SIGKILL) })

	// Died after recording replicas: 2 but before starting the second.
	editRecord(t, dir, func(r *unitRecord) { r.Spec.Replicas = 2 })
	s2, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s2.WaitHealthy(ctx, "shop", "dev", "v1"); err != nil {
		t.Fatal(err)
	}
	got := s2.Instances("shop", "dev", "v1")
	if len(got) != 2 || got[0].PID != ins[0].PID {
		t.Fatalf("instances %+v, want the adopted one and a new one", got)
	}
	s2.Close()
	t.Cleanup(func() { syscall.Kill(-got[1].PID, syscall.SIGKILL) })

	// Died in the middle of stopping the unit.
	editRecord(t, dir, func(r *unitRecord) { r.Stopping = true })
	s3, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSupervisor(t, s3) })
	if n := len(s3.List()); n != 0 {
		t.Fatalf("%d instances of a unit that was being stopped", n)
	}
	for _, in := range got {
		eventually(t, fmt.Sprintf("pid %d is gone", in.PID), func() bool { return !alive(in.PID, 0) })
	}
}

func TestStopCutShortFinishesInTheBackground(t *testing.T) {
	t.Parallel()
	s, _ := newSupervisor(t, nil)
	spec := demoSpec(testDigest, "v1", 1)
	spec.Vars = map[string]string{modeVar: "ignore-term"}
	spec.StopGrace = 500 * time.Millisecond
	in := ensureHealthy(t, s, spec)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx, "shop", "dev", "v1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the context's deadline", err)
	}
	record := filepath.Join(s.opts.Dir, "units", "shop", "dev", "v1", "unit.json")
	eventually(t, "the process is killed and the record removed", func() bool {
		_, err := os.Stat(record)
		return !alive(in.PID, 0) && os.IsNotExist(err)
	})
	// The unit can be deployed again afterwards.
	ensureHealthy(t, s, spec)
}

// TestSecretsAreNeverWrittenToDisk: the unit's record names its secrets
// but holds no value. After a restart of airlock, a live instance is
// adopted; a dead one waits until an Ensure supplies the secrets again,
// then starts with them.
func TestSecretsAreNeverWrittenToDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	putTestBinary(t, first)
	spec := demoSpec(testDigest, "v1", 2)
	spec.Vars = map[string]string{modeVar: "env"}
	spec.Secrets = map[string]string{"DB_PASSWORD": "hunter2-s3cret"}
	ins := ensureHealthy(t, first, spec)
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "artifacts") || strings.HasSuffix(path, ".log") || strings.Contains(path, "stdout") || strings.Contains(path, "stderr") {
			return err
		}
		if b, _ := os.ReadFile(path); strings.Contains(string(b), "hunter2-s3cret") {
			t.Errorf("%s holds the secret", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// airlock goes away; one instance dies meanwhile.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(-ins[1].PID, syscall.SIGKILL)
	waitGone(t, ins[1].PID)

	second, err := New(fastOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeSupervisor(t, second) })
	var waiting Instance
	for _, in := range second.Instances("shop", "dev", "v1") {
		if in.Index == 1 {
			waiting = in
		}
	}
	if waiting.State != StateBackoff || !strings.Contains(waiting.Reason, "waiting for airlock to supply its secrets") {
		t.Fatalf("the dead instance without its secrets: %+v", waiting)
	}
	after := ensureHealthy(t, second, spec)
	if after[0].PID != ins[0].PID {
		t.Fatalf("the live instance was restarted (pid %d → %d) when its secrets came back", ins[0].PID, after[0].PID)
	}
	if !strings.Contains(readFile(t, after[1].Logs.Stdout), "ENV DB_PASSWORD=hunter2-s3cret") {
		t.Fatal("the restarted instance did not get its secret")
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not die", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
