// Command ingest measures evidence ingestion end to end: it starts a real
// airlock server (a separate process, SQLite in a temporary data
// directory), registers an application and a release, generates a SARIF
// file of the requested size, uploads it through the HTTP API, and prints
// the wall time of the upload and the server's peak resident memory
// (VmHWM from /proc) before and after.
//
//	go run ./bench/ingest -size 50 -runs 3
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	sizeMB := flag.Int("size", 50, "SARIF file size in MiB")
	runs := flag.Int("runs", 3, "uploads, each of a fresh file to a fresh release")
	bin := flag.String("airlock", "", "airlock binary (default: go build ./cmd/airlock into a temp dir)")
	flag.Parse()
	if err := run(*sizeMB, *runs, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(sizeMB, runs int, bin string) error {
	dir, err := os.MkdirTemp("", "airlock-bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "airlock")
		build := exec.Command("go", "build", "-o", bin, "./cmd/airlock")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	srv := exec.Command(bin, "server", "--data", data, "--listen", addr)
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	base := "http://" + addr
	if err := waitReady(base); err != nil {
		return err
	}
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		return err
	}
	c := &api{base: base, token: strings.TrimSpace(string(token))}
	if err := c.do("POST", "/api/v1/apply", "application/yaml", strings.NewReader(world), 200); err != nil {
		return err
	}
	fmt.Printf("sarif_mib=%d server_rss_hwm_start_mib=%.1f\n", sizeMB, hwm(srv.Process.Pid))
	for i := 1; i <= runs; i++ {
		version := fmt.Sprintf("1.0.%d", i)
		rel := fmt.Sprintf(`{"app":"shop","version":%q,"artifact":{"digest":"sha256:%064x"},"commit":"9f2c1e7"}`, version, i)
		if err := c.do("POST", "/api/v1/releases", "application/json", strings.NewReader(rel), 201); err != nil {
			return err
		}
		path := filepath.Join(dir, "big.sarif")
		results, size, err := writeSARIF(path, sizeMB<<20, i)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		start := time.Now()
		err = c.do("POST", "/api/v1/evidence?app=shop&version="+version+"&type=sast", "application/octet-stream", f, 201)
		elapsed := time.Since(start)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Printf("run=%d bytes=%d results=%d upload_s=%.3f server_rss_hwm_mib=%.1f\n", i, size, results, elapsed.Seconds(), hwm(srv.Process.Pid))
	}
	return nil
}

const world = `apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: dev}
spec: {tier: development, data: synthetic, isolation: {level: labels, network: dev-net, credentials: dev-vault}}
---
apiVersion: airlock.dev/v1
kind: Environment
metadata: {name: prod}
spec: {tier: production, data: production, isolation: {level: labels, network: prod-net, credentials: prod-vault, waiver: {reason: "benchmark on one machine"}}}
---
apiVersion: airlock.dev/v1
kind: Pipeline
metadata: {name: default}
spec: {stages: [{environment: dev}, {environment: prod}]}
---
apiVersion: airlock.dev/v1
kind: Application
metadata: {name: shop}
spec: {owners: [bench], pipeline: default}
`

type api struct{ base, token string }

func (a *api) do(method, path, ctype string, body io.Reader, want int) error {
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(got))
	}
	var v map[string]any
	_ = json.Unmarshal(got, &v)
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server at %s not ready in 20s", base)
}

// hwm reads a process's peak resident set size in MiB.
func hwm(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// writeSARIF writes a CodeQL-like SARIF 2.1.0 log of about size bytes.
func writeSARIF(path string, size, seed int) (results int, n int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	cw := &countingWriter{w: w}
	fmt.Fprint(cw, `{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{"tool":{"driver":{"name":"CodeQL","semanticVersion":"2.17.2","rules":[`)
	const rules = 60
	for i := 0; i < rules; i++ {
		if i > 0 {
			fmt.Fprint(cw, ",")
		}
		fmt.Fprintf(cw, `{"id":"go/rule-%d","shortDescription":{"text":"Rule %d"},"defaultConfiguration":{"level":"%s"},"help":{"text":"%s"},"properties":{"tags":["security"],"security-severity":"%.1f"}}`,
			i, i, []string{"error", "warning", "note"}[i%3], strings.Repeat("Help text. ", 40), float64(i%10)+0.5)
	}
	fmt.Fprint(cw, `]}},"results":[`)
	for cw.n < int64(size) {
		if results > 0 {
			fmt.Fprint(cw, ",")
		}
		r := results % rules
		fmt.Fprintf(cw, `{"ruleId":"go/rule-%d","ruleIndex":%d,"message":{"text":"This query depends on a user-provided value reaching sink %d (seed %d)."},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"internal/pkg%d/file%d.go"},"region":{"startLine":%d,"startColumn":5}}}],"partialFingerprints":{"primaryLocationLineHash":"%016x:1"},"codeFlows":[{"threadFlows":[{"locations":[{"location":{"physicalLocation":{"artifactLocation":{"uri":"internal/pkg%d/file%d.go"},"region":{"startLine":%d}},"message":{"text":"selection of URL"}}}]}]}]}`,
			r, r, results, seed, results%97, results%13, results%3000+1, results*7919, results%97, results%13, results%3000+1)
		results++
	}
	fmt.Fprint(cw, `]}]}`)
	if cw.err != nil {
		return 0, 0, cw.err
	}
	return results, cw.n, w.Flush()
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
