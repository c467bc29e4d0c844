package evidence

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var updateScanGolden = flag.Bool("update-scan", false, "rewrite the *.report.json of testdata/{sarif,trivy,grype,zap,k6,sbom}")

// scanGoldenType is the evidence type each golden input of the scan and
// SBOM parsers is ingested as; every input file must be listed.
var scanGoldenType = map[string]Type{
	"sarif/gosec.sarif":                 SAST,
	"sarif/golangci-lint.sarif":         Lint,
	"sarif/codeql-go.sarif":             SAST,
	"sarif/semgrep.sarif":               SAST,
	"trivy/image-alpine.json":           ContainerScan,
	"trivy/config-k8s.json":             IaC,
	"grype/image.json":                  ContainerScan,
	"grype/directory.json":              SCA,
	"zap/baseline.json":                 DAST,
	"k6/summary-export.json":            Perf,
	"k6/handle-summary.json":            Perf,
	"sbom/cyclonedx-gomod-mod.cdx.json": SBOM,
	"sbom/npm-sbom.cdx.json":            SBOM,
	"sbom/npm-sbom.spdx.json":           SBOM,
	"sbom/image-nested.cdx.json":        SBOM,
	"sbom/image.spdx.json":              SBOM,
}

// scanGoldenInputs lists the inputs under testdata/dir: every file but
// READMEs and the expected *.report.json.
func scanGoldenInputs(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, "README") || strings.HasSuffix(n, ".report.json") {
			continue
		}
		files = append(files, filepath.Join(dir, n))
	}
	if len(files) == 0 {
		t.Fatalf("no inputs in testdata/%s", dir)
	}
	return files
}

// TestScanGolden ingests each sample through the dispatcher (so sniffing
// picks the parser) and compares the whole report with <input>.report.json.
func TestScanGolden(t *testing.T) {
	t.Parallel()
	seen := 0
	for _, dir := range []string{"sarif", "trivy", "grype", "zap", "k6", "sbom"} {
		for _, in := range scanGoldenInputs(t, dir) {
			typ, ok := scanGoldenType[in]
			if !ok {
				t.Errorf("testdata/%s is not in scanGoldenType", in)
				continue
			}
			seen++
			t.Run(in, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join("testdata", in)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Parse(typ, bytes.NewReader(data), Options{})
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				got, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
				want := path + ".report.json"
				if *updateScanGolden {
					if err := os.WriteFile(want, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				wantData, err := os.ReadFile(want)
				if err != nil {
					t.Fatalf("%v (run with -update-scan to create it, then check it by hand)", err)
				}
				var a, b any
				if err := json.Unmarshal(got, &a); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(wantData, &b); err != nil {
					t.Fatalf("%s: %v", want, err)
				}
				if !scanJSONEqual(a, b) {
					t.Errorf("report differs from %s\ngot:\n%s\nwant:\n%s", want, got, wantData)
				}
			})
		}
	}
	if seen != len(scanGoldenType) {
		t.Errorf("scanGoldenType lists %d inputs, testdata has %d", len(scanGoldenType), seen)
	}
}

// scanParseString runs p over s.
func scanParseString(p Parser, s string) (*Report, error) {
	return p(strings.NewReader(s), Options{})
}

// scanWantFormatError checks err is a *FormatError naming format whose message
// contains every one of parts.
func scanWantFormatError(t *testing.T, err error, format string, parts ...string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if fe.Format != format {
		t.Errorf("error format %q, want %q (%v)", fe.Format, format, err)
	}
	for _, p := range parts {
		if !strings.Contains(fe.Msg, p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// sarifLog builds a one-run SARIF log from the tool and results JSON.
func sarifLog(tool, results string) string {
	return `{"version":"2.1.0","runs":[{"tool":` + tool + `,"results":[` + results + `]}]}`
}

func TestSARIFSeverities(t *testing.T) {
	t.Parallel()
	tool := `{"driver":{"name":"scanner","rules":[
		{"id":"R-crit","defaultConfiguration":{"level":"note"},"properties":{"security-severity":"9.1"}},
		{"id":"R-err","defaultConfiguration":{"level":"error"}},
		{"id":"R-plain"},
		{"id":"R-num","properties":{"security-severity":5.5}},
		{"id":"R-bad","properties":{"security-severity":"high"}},
		{"id":"R-none","defaultConfiguration":{"level":"none"}}]}}`
	tests := []struct {
		name   string
		result string
		want   Severity // "" means not counted
	}{
		{"security-severity beats level", `{"ruleId":"R-crit","level":"warning","message":{"text":"m"}}`, Critical},
		{"rule default level", `{"ruleId":"R-err","message":{"text":"m"}}`, High},
		{"result level beats default", `{"ruleId":"R-err","level":"note","message":{"text":"m"}}`, Low},
		{"no level anywhere is warning", `{"ruleId":"R-plain","message":{"text":"m"}}`, Medium},
		{"unknown rule is warning", `{"ruleId":"nope","message":{"text":"m"}}`, Medium},
		{"numeric security-severity", `{"ruleId":"R-num","message":{"text":"m"}}`, Medium},
		{"unparsable security-severity falls back", `{"ruleId":"R-bad","level":"error","message":{"text":"m"}}`, High},
		{"level none", `{"ruleId":"R-none","message":{"text":"m"}}`, None},
		{"rule by index only", `{"ruleIndex":1,"message":{"text":"m"}}`, High},
		{"suppressed, accepted", `{"ruleId":"R-err","suppressions":[{"kind":"inSource","status":"accepted"}]}`, ""},
		{"suppressed, no status", `{"ruleId":"R-err","suppressions":[{"kind":"external"}]}`, ""},
		{"suppression under review counts", `{"ruleId":"R-err","suppressions":[{"kind":"external","status":"underReview"}]}`, High},
		{"suppression rejected counts", `{"ruleId":"R-err","suppressions":[{"kind":"external","status":"rejected"}]}`, High},
		{"kind pass is no finding", `{"ruleId":"R-err","kind":"pass"}`, ""},
		{"kind review without level is none", `{"ruleId":"R-err","kind":"review"}`, None},
		{"absent from baseline", `{"ruleId":"R-err","baselineState":"absent"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := scanParseString(sarifParser(SAST), sarifLog(tool, tt.result))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if n := rep.Facts["sast.count.total"]; n != 0.0 || len(rep.Findings) != 0 {
					t.Fatalf("counted %v (findings %v), want none", n, rep.Findings)
				}
				return
			}
			if len(rep.Findings) != 1 || rep.Findings[0].Severity != tt.want {
				t.Fatalf("findings %+v, want one of severity %s", rep.Findings, tt.want)
			}
			if rep.Facts["sast.count."+string(tt.want)] != 1.0 || rep.Facts["sast.max_severity"] != string(tt.want) {
				t.Errorf("facts %v", rep.Facts)
			}
		})
	}
}

// TestSARIFRulesAfterResults checks results read before their run's tool
// still get their rules' severities.
func TestSARIFRulesAfterResults(t *testing.T) {
	t.Parallel()
	doc := `{"runs":[{"results":[
		{"ruleId":"A","locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.go"},"region":{"startLine":3}}}],"message":{"text":"first"}},
		{"ruleIndex":1,"message":{"text":"second"}}],
		"tool":{"driver":{"name":"late","rules":[
			{"id":"A","properties":{"security-severity":"9.8"}},
			{"id":"B","defaultConfiguration":{"level":"note"}}]}}}],
		"version":"2.1.0"}`
	rep, err := scanParseString(sarifParser(Lint), doc)
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{ID: "A", Severity: Critical, Location: "a.go:3", Message: "first"},
		{ID: "B", Severity: Low, Message: "second"},
	}
	if fmt.Sprint(rep.Findings) != fmt.Sprint(want) {
		t.Errorf("findings %+v, want %+v", rep.Findings, want)
	}
	if got := rep.Facts["lint.rules"]; fmt.Sprint(got) != "[A B]" {
		t.Errorf("lint.rules = %v", got)
	}
	if got := rep.Facts["lint.tools"]; fmt.Sprint(got) != "[late]" {
		t.Errorf("lint.tools = %v", got)
	}
	if rep.Type != Lint || rep.Format != "sarif-2.1.0" {
		t.Errorf("type %q format %q", rep.Type, rep.Format)
	}
}

// TestSARIFExtensionRules checks CodeQL's layout: rules in an extension,
// named by rule.toolComponent.index and rule.index.
func TestSARIFExtensionRules(t *testing.T) {
	t.Parallel()
	tool := `{"driver":{"name":"CodeQL","rules":[{"id":"X","defaultConfiguration":{"level":"note"}}]},
		"extensions":[{"name":"pack","rules":[{"id":"X","properties":{"security-severity":"7.0"}}]}]}`
	rep, err := scanParseString(sarifParser(SAST), sarifLog(tool,
		`{"ruleId":"X","rule":{"id":"X","index":0,"toolComponent":{"index":0}}},{"ruleId":"X","ruleIndex":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts["sast.count.high"] != 1.0 || rep.Facts["sast.count.low"] != 1.0 {
		t.Errorf("facts %v, want one high (extension rule) and one low (driver rule)", rep.Facts)
	}
}

func TestSARIFMessageAndLocation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 400)
	rep, err := scanParseString(sarifParser(SAST), sarifLog(`{"driver":{"name":"t","rules":[{"id":"R","shortDescription":{"text":"from the rule"}}]}}`,
		`{"ruleId":"R","message":{"text":"`+long+`"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"x/y.go"}}}]},
		 {"ruleId":"R","locations":[{"physicalLocation":{"artifactLocation":{"uri":"z.go"},"region":{"startLine":9}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 2 {
		t.Fatalf("findings %+v", rep.Findings)
	}
	f0, f1 := rep.Findings[0], rep.Findings[1]
	if f0.Location != "x/y.go" || len([]rune(f0.Message)) != sarifMaxMessage || !strings.HasSuffix(f0.Message, "…") {
		t.Errorf("first finding location %q, message of %d runes", f0.Location, len([]rune(f0.Message)))
	}
	if f1.Location != "z.go:9" || f1.Message != "from the rule" {
		t.Errorf("second finding %+v", f1)
	}
}

func TestSARIFCountsBeyondMaxFindings(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	n := 2*MaxFindings + 7
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		lvl := "warning"
		if i%1000 == 0 {
			lvl = "error"
		}
		fmt.Fprintf(&b, `{"ruleId":"R%d","level":"%s"}`, i%50, lvl)
	}
	rep, err := scanParseString(sarifParser(SAST), sarifLog(`{"driver":{"name":"t"}}`, b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts["sast.count.total"] != float64(n) || rep.Facts["sast.count.high"] != 21.0 {
		t.Errorf("counts %v, want total %d and 21 high", rep.Facts, n)
	}
	if len(rep.Findings) != MaxFindings || rep.Findings[0].Severity != High || rep.Findings[20].Severity != High || rep.Findings[21].Severity != Medium {
		t.Errorf("kept %d findings, first %v, 21st %v", len(rep.Findings), rep.Findings[0], rep.Findings[21])
	}
}

func TestSARIFErrors(t *testing.T) {
	t.Parallel()
	gosec, err := os.ReadFile("testdata/sarif/gosec.sarif")
	if err != nil {
		t.Fatal(err)
	}
	cdx, err := os.ReadFile("testdata/sbom/npm-sbom.cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		doc   string
		parts []string
	}{
		{"empty", "", []string{"empty document"}},
		{"not JSON", "<sarifLog/>", []string{"invalid JSON"}},
		{"array", "[]", []string{"the document is an array"}},
		{"CycloneDX", string(cdx), []string{"not a SARIF log", "CycloneDX"}},
		{"truncated", string(gosec[:len(gosec)/2]), []string{"truncated"}},
		{"version 2.0.0", `{"version":"2.0.0","runs":[]}`, []string{`unsupported version "2.0.0"`, "2.1.0"}},
		{"numeric version", `{"version":2.1,"runs":[]}`, []string{"unsupported version 2.1"}},
		{"no runs", `{"version":"2.1.0"}`, []string{`no "runs"`}},
		{"runs not array", `{"version":"2.1.0","runs":{}}`, []string{"runs is an object, want an array"}},
		{"run without tool", `{"version":"2.1.0","runs":[{"results":[]}]}`, []string{`no "tool"`}},
		{"bad level", sarifLog(`{"driver":{"name":"t"}}`, `{"ruleId":"R","level":"fatal"}`), []string{`unknown level "fatal"`}},
		{"bad startLine", sarifLog(`{"driver":{"name":"t"}}`, `{"ruleId":"R","locations":[{"physicalLocation":{"region":{"startLine":"x"}}}]}`), []string{"startLine", "string"}},
		{"trailing data", `{"version":"2.1.0","runs":[]} {}`, []string{"after the document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scanParseString(sarifParser(SAST), tt.doc)
			scanWantFormatError(t, err, sarifName, tt.parts...)
		})
	}
}

// TestScanSizeLimit checks every parser stops at the document size limit
// with a FormatError, using the dispatcher's limit reader with a small
// allowance (a parser wraps its input in newLimitReader, which keeps an
// existing limit reader).
func TestScanSizeLimit(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"sarif/codeql-go.sarif", "trivy/image-alpine.json", "grype/image.json", "zap/baseline.json",
		"k6/summary-export.json", "sbom/npm-sbom.cdx.json", "sbom/npm-sbom.spdx.json"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", in))
			if err != nil {
				t.Fatal(err)
			}
			typ := scanGoldenType[in]
			var p Parser
			for _, s := range parsers[typ] {
				if s.sniff(data) {
					p = s.parse
					break
				}
			}
			if p == nil {
				t.Fatalf("no parser of %s claims %s", typ, in)
			}
			for _, allow := range []int64{int64(len(data)), int64(len(data)) - 1} {
				lr := &limitReader{r: bytes.NewReader(data), left: allow, format: "limit"}
				_, err := p(lr, Options{})
				if allow == int64(len(data)) && err != nil {
					t.Errorf("document of exactly the limit: %v", err)
				}
				if allow < int64(len(data)) {
					scanWantFormatError(t, err, "limit", "larger than the 128 MiB limit")
				}
			}
		})
	}
}

// scanFuzzSeeds adds every sample under testdata/dir to f, and its first half.
func scanFuzzSeeds(f *testing.F, dir string) {
	for _, in := range scanGoldenInputs(f, dir) {
		data, err := os.ReadFile(filepath.Join("testdata", in))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
}

// scanCheckFuzz holds for every parser on every input: a *FormatError
// or a consistent report.
func scanCheckFuzz(t *testing.T, rep *Report, err error, prefix string) {
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T) is not a *FormatError", err, err)
		}
		if rep != nil {
			t.Fatal("report and error both returned")
		}
		return
	}
	if rep == nil || rep.Facts == nil {
		t.Fatal("nil report or facts without an error")
	}
	if len(rep.Findings) > MaxFindings {
		t.Fatalf("%d findings kept", len(rep.Findings))
	}
	for _, s := range rep.Subjects {
		if _, ok := scanDigest(s); !ok || !strings.HasPrefix(s, "sha256:") {
			t.Fatalf("subject %q is not a sha256 digest", s)
		}
	}
	if prefix == "" {
		return
	}
	total, sum := rep.Facts[prefix+".count.total"].(float64), 0.0
	for _, s := range Severities {
		sum += rep.Facts[prefix+".count."+string(s)].(float64)
	}
	if total != sum || float64(len(rep.Findings)) > total {
		t.Fatalf("count.total %v, sum of severities %v, %d findings", total, sum, len(rep.Findings))
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

func FuzzSARIF(f *testing.F) {
	scanFuzzSeeds(f, "sarif")
	f.Add([]byte(sarifLog(`{"driver":{"name":"t","rules":[{"id":"R"}]}}`, `{"ruleIndex":0}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := sarifParser(SAST)(bytes.NewReader(data), Options{})
		scanCheckFuzz(t, rep, err, "sast")
	})
}

// writeSARIF writes a realistic SARIF log of about size bytes: a
// CodeQL-like run with 60 rules (help text included) and results with code
// flows, the shape that makes large real logs large.
func writeSARIF(w io.Writer, size int) (results int, err error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &sarifCountingWriter{w: bw}
	fmt.Fprint(cw, `{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{"tool":{"driver":{"name":"CodeQL","semanticVersion":"2.17.2","rules":[`)
	const rules = 60
	for i := 0; i < rules; i++ {
		if i > 0 {
			fmt.Fprint(cw, ",")
		}
		fmt.Fprintf(cw, `{"id":"go/rule-%d","name":"go/rule-%d","shortDescription":{"text":"Rule %d"},"fullDescription":{"text":"%s"},"defaultConfiguration":{"enabled":true,"level":"%s"},"help":{"text":"%s","markdown":"%s"},"properties":{"tags":["security","external/cwe/cwe-%03d"],"precision":"high","security-severity":"%.1f"}}`,
			i, i, i, strings.Repeat("Describes the problem. ", 10), []string{"error", "warning", "note"}[i%3],
			strings.Repeat("Help text with an example. ", 40), strings.Repeat("Help *markdown* with `code`. ", 40), i, float64(i%10)+0.5)
	}
	fmt.Fprint(cw, `]}},"artifacts":[{"location":{"uri":"main.go","index":0}}],"results":[`)
	for cw.n < int64(size) {
		if results > 0 {
			fmt.Fprint(cw, ",")
		}
		r := results % rules
		fmt.Fprintf(cw, `{"ruleId":"go/rule-%d","ruleIndex":%d,"rule":{"id":"go/rule-%d","index":%d},"message":{"text":"This query depends on a [user-provided value](1) reaching sink number %d."},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"internal/pkg%d/file%d.go","uriBaseId":"%%SRCROOT%%","index":%d},"region":{"startLine":%d,"startColumn":5,"endColumn":42}}}],"partialFingerprints":{"primaryLocationLineHash":"%016x:1","primaryLocationStartColumnFingerprint":"4"},"codeFlows":[{"threadFlows":[{"locations":[{"location":{"physicalLocation":{"artifactLocation":{"uri":"internal/pkg%d/file%d.go","index":%d},"region":{"startLine":%d,"startColumn":10,"endColumn":21}},"message":{"text":"selection of URL"}}},{"location":{"physicalLocation":{"artifactLocation":{"uri":"internal/pkg%d/file%d.go","index":%d},"region":{"startLine":%d,"startColumn":18,"endColumn":86}},"message":{"text":"...+..."}}}]}]}]}`,
			r, r, r, r, results, results%97, results%13, results%500, results%3000+1, results*7919,
			results%97, results%13, results%500, results%3000, results%97, results%13, results%500, results%3000+1)
		results++
	}
	fmt.Fprint(cw, `]}]}`)
	if cw.err != nil {
		return 0, cw.err
	}
	return results, bw.Flush()
}

type sarifCountingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *sarifCountingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// BenchmarkSARIF50MB ingests a generated 50 MB SARIF log from disk and
// reports the peak heap in use (sampled every 2 ms while parsing), the
// bytes allocated and the CPU time per ingest (user and system, which other
// load on the machine does not inflate as it does ns/op).
//
//	go test ./internal/evidence -run '^$' -bench SARIF50MB -benchtime 5x
func BenchmarkSARIF50MB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.sarif")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	results, err := writeSARIF(f, 50<<20)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var peak atomic.Uint64
	var cpu time.Duration
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-t.C:
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		}()
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start := sarifCPUTime()
		rep, err := Parse(SAST, in, Options{})
		cpu += sarifCPUTime() - start
		close(done)
		in.Close()
		if err != nil {
			b.Fatal(err)
		}
		if rep.Facts["sast.count.total"] != float64(results) {
			b.Fatalf("counted %v results, wrote %d", rep.Facts["sast.count.total"], results)
		}
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(results), "results")
}

func scanJSONEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestSARIFManyResultsBeforeTool checks the results a run lists before its
// tool are all counted with their rules' severities, though only
// sarifMaxPending of them wait in full.
func TestSARIFManyResultsBeforeTool(t *testing.T) {
	t.Parallel()
	n := sarifMaxPending + 5003
	var b strings.Builder
	b.WriteString(`{"version":"2.1.0","runs":[{"results":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ruleId":"R%d","message":{"text":"m%d"}}`, i%10, i)
	}
	b.WriteString(`],"tool":{"driver":{"name":"t","rules":[{"id":"R0","properties":{"security-severity":"9.5"}},{"id":"R1","defaultConfiguration":{"level":"note"}}]}}}]}`)
	rep, err := scanParseString(sarifParser(SAST), b.String())
	if err != nil {
		t.Fatal(err)
	}
	crit, low := float64((n+9)/10), float64((n+8)/10)
	if rep.Facts["sast.count.total"] != float64(n) || rep.Facts["sast.count.critical"] != crit || rep.Facts["sast.count.low"] != low ||
		rep.Facts["sast.count.medium"] != float64(n)-crit-low {
		t.Errorf("facts %v, want %d results, %v critical, %v low", rep.Facts, n, crit, low)
	}
	if len(rep.Findings) != MaxFindings || rep.Findings[0].Severity != Critical {
		t.Errorf("kept %d findings, first %+v", len(rep.Findings), rep.Findings[0])
	}
	if got := fmt.Sprint(rep.Facts["sast.rules"]); got != "[R0 R1 R2 R3 R4 R5 R6 R7 R8 R9]" {
		t.Errorf("sast.rules = %s", got)
	}
}

// TestScanListBound checks a list longer than its bound is rejected rather
// than held.
func TestScanListBound(t *testing.T) {
	t.Parallel()
	doc := `{"SchemaVersion":2,"Results":[{"Target":"t","Vulnerabilities":[` +
		strings.Repeat(`{"Severity":"LOW"},`, scanCapLarge{}.max()) + `{"Severity":"LOW"}]}]}`
	_, err := scanParseString(trivyParser(SCA), doc)
	scanWantFormatError(t, err, trivyName, "Results[]", "more than 100000 entries")
	doc = strings.Replace(doc, `{"Severity":"LOW"}]`, `]`, 1)
	doc = strings.Replace(doc, `,]`, `]`, 1)
	rep, err := scanParseString(trivyParser(SCA), doc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts["sca.count.low"] != float64(scanCapLarge{}.max()) {
		t.Errorf("facts %v", rep.Facts)
	}
}
