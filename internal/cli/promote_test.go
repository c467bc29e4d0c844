package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// seqFake answers each "METHOD /path" with the next of its routes; the
// last one repeats. It records every request.
type seqFake struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string][]route
	served map[string]int
	reqs   []request
}

func newSeqFake(t *testing.T, routes map[string][]route) (*seqFake, string) {
	t.Helper()
	f := &seqFake{t: t, routes: routes, served: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *seqFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.reqs = append(f.reqs, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), Body: string(b)})
	rs := f.routes[key]
	i := min(f.served[key], len(rs)-1)
	f.served[key]++
	f.mu.Unlock()
	if len(rs) == 0 {
		f.t.Errorf("unexpected request %s", key)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	rt := rs[i]
	if rt.status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rt.status)
	io.WriteString(w, rt.body)
}

func (f *seqFake) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[key]
}

func (f *seqFake) all() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

const promoName = "shop-1.4.0.to.test"

var (
	gatePass    = map[string]any{"gate": "unit-tests", "type": "tests", "status": "pass", "reasons": []string{"48 passed, 0 failed (evidence sha256:aaaa)"}}
	gateFail    = map[string]any{"gate": "coverage", "type": "coverage", "status": "fail", "reasons": []string{"line coverage 71.4% is below the required 80%"}, "fix": "attach coverage of at least 80%"}
	gatePending = map[string]any{"gate": "sast", "type": "sast", "status": "pending", "reasons": []string{"no sast evidence"}, "fix": "airlock evidence add shop 1.4.0 --type sast FILE", "security": true}
)

// promotionJSON is a Promotion object in phase with gates.
func promotionJSON(phase, message string, gates ...map[string]any) string {
	return promotionObj(phase, message, nil, "", gates...)
}

func promotionObj(phase, message string, emergency map[string]string, review string, gates ...map[string]any) string {
	spec := map[string]any{"app": "shop", "version": "1.4.0", "release": "shop-1.4.0", "pipeline": "default", "from": "dev", "to": "test", "requestedBy": "ci"}
	if emergency != nil {
		spec["emergency"] = emergency
	}
	status := map[string]any{"phase": phase, "message": message, "gates": gates, "policyRevision": 7, "evaluations": 1}
	if review != "" {
		status["review"] = review
	}
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "airlock.dev/v1", "kind": "Promotion",
		"metadata": map[string]any{"name": promoName, "createdAt": "2026-11-27T14:00:00Z"},
		"spec":     spec, "status": status,
	})
	return string(b)
}

func TestPromoteOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     route
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{"succeeded", route{201, promotionJSON("Succeeded", "all 1 gates passed", gatePass)}, 0,
			[]string{"GATE", "unit-tests", "48 passed, 0 failed", "promotion/" + promoName + " succeeded: shop 1.4.0 is promoted to test"}, ""},
		{"blocked", route{201, promotionJSON("Blocked", "gate \"coverage\" failed", gatePass, gateFail)}, 3,
			[]string{"coverage", "fail", "line coverage 71.4% is below the required 80%", "fix: attach coverage of at least 80%"}, "blocked: promotion/" + promoName + ": gate \"coverage\" failed"},
		{"pending", route{201, promotionJSON("Pending", "1 gate waits for evidence", gatePass, gatePending)}, 3,
			[]string{"sast", "pending (security)", "fix: airlock evidence add shop 1.4.0 --type sast FILE"}, "not allowed yet: promotion/" + promoName},
		{"skipped stage", problem(422, "shop 1.4.0 has not completed dev"), 3, nil, "error: shop 1.4.0 has not completed dev"},
		{"forbidden", problem(403, "role ci may not promote to prod"), 3, nil, "error: role ci may not promote to prod"},
		{"no release", problem(404, "release shop-1.4.0 not found"), 1, nil, "error: release shop-1.4.0 not found"},
		{"already promoted by another promotion", problem(409, "already in test"), 1, nil, "error: already in test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, url := newSeqFake(t, map[string][]route{
				"POST /api/v1/promotions":             {tt.answer},
				"GET /api/v1/promotions/" + promoName: {problem(404, "not found")},
			})
			code, stdout, stderr := runCLI(t, url, "", "promote", "shop", "1.4.0", "--to", "test")
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
			reqs := f.all()
			if len(reqs) < 1 || reqs[0].Body != `{"app":"shop","version":"1.4.0","to":"test"}` {
				t.Errorf("requests = %+v", reqs)
			}
		})
	}
}

func TestPromoteAlreadySucceeded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		get      route
		wantCode int
		want     string
	}{
		{"this promotion succeeded", route{200, promotionJSON("Succeeded", "ok", gatePass)}, 0, "had already succeeded"},
		{"this promotion is blocked", route{200, promotionJSON("Blocked", "no", gateFail)}, 1, "error: already in test"},
		{"no such promotion", problem(404, "not found"), 1, "error: already in test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, url := newSeqFake(t, map[string][]route{
				"POST /api/v1/promotions":             {problem(409, "already in test")},
				"GET /api/v1/promotions/" + promoName: {tt.get},
			})
			code, _, stderr := runCLI(t, url, "", "promote", "shop", "1.4.0", "--to", "test", "--wait")
			if code != tt.wantCode || !strings.Contains(stderr, tt.want) {
				t.Errorf("code %d, stderr %q; want %d and %q", code, stderr, tt.wantCode, tt.want)
			}
		})
	}
}

func TestPromoteGateTableFixLine(t *testing.T) {
	t.Parallel()
	_, url := newSeqFake(t, map[string][]route{"POST /api/v1/promotions": {{201, promotionJSON("Blocked", "blocked", gatePass, gateFail)}}})
	_, stdout, _ := runCLI(t, url, "", "promote", "shop", "1.4.0", "--to", "test")
	want := "" +
		"GATE         TYPE       STATUS   DETAIL\n" +
		"unit-tests   tests      pass     48 passed, 0 failed (evidence sha256:aaaa)\n" +
		"coverage     coverage   fail     line coverage 71.4% is below the required 80%\n" +
		"                                 fix: attach coverage of at least 80%\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
}

func TestPromoteWait(t *testing.T) {
	t.Parallel()
	pending := route{201, promotionJSON("Pending", "1 gate waits for evidence", gatePass, gatePending)}
	get := "GET /api/v1/promotions/" + promoName
	tests := []struct {
		name       string
		gets       []route
		extra      []string
		wantCode   int
		wantGets   int // at least
		wantStderr string
		wantStdout string
	}{
		{"pending then succeeded", []route{{200, promotionJSON("Pending", "waiting", gatePass, gatePending)}, {200, promotionJSON("Succeeded", "ok", gatePass)}}, nil,
			0, 2, "waiting up to 30m0s", "promotion/" + promoName + " succeeded"},
		{"pending then blocked", []route{{200, promotionJSON("Pending", "waiting", gatePass, gatePending)}, {200, promotionJSON("Blocked", "gate \"coverage\" failed", gatePass, gateFail)}}, nil,
			3, 2, "blocked: promotion/" + promoName, "fix: attach coverage of at least 80%"},
		{"times out", []route{{200, promotionJSON("Pending", "1 gate waits for evidence", gatePass, gatePending)}}, []string{"--timeout", "50ms"},
			3, 1, "not allowed yet: timed out after 50ms waiting for evidence", "fix: airlock evidence add shop 1.4.0 --type sast FILE"},
		{"poll error", []route{problem(500, "database is gone")}, nil,
			1, 1, "error: database is gone", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, url := newSeqFake(t, map[string][]route{"POST /api/v1/promotions": {pending}, get: tt.gets})
			argv := append([]string{"promote", "shop", "1.4.0", "--to", "test", "--wait"}, tt.extra...)
			code, stdout, stderr := runCLI(t, url, "", argv...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if n := f.count(get); n < tt.wantGets {
				t.Errorf("%d polls, want at least %d", n, tt.wantGets)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
		})
	}
}

func TestPromoteWaitReturnsAtOnceWhenDecided(t *testing.T) {
	t.Parallel()
	f, url := newSeqFake(t, map[string][]route{"POST /api/v1/promotions": {{201, promotionJSON("Blocked", "no", gateFail)}}})
	if code, _, _ := runCLI(t, url, "", "promote", "shop", "1.4.0", "--to", "test", "--wait"); code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	if n := len(f.all()); n != 1 {
		t.Errorf("%d requests, want 1 (no polling of a blocked promotion)", n)
	}
}

func TestPromoteUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"promote", "shop", "1.4.0"}, "--to is required"},
		{[]string{"promote", "shop"}, "accepts 2 arg(s)"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--emergency"}, "--emergency needs --incident ID and --reason TEXT"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--emergency", "--incident", "INC-1"}, "--emergency needs --incident ID and --reason TEXT"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--emergency", "--reason", "down"}, "--emergency needs --incident ID and --reason TEXT"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--emergency", "--incident", " ", "--reason", "down"}, "--emergency needs"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--incident", "INC-1", "--reason", "down"}, "go with --emergency"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--wait", "--timeout", "soon"}, `--timeout "soon"`},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "--timeout", "5m"}, "--timeout goes with --wait"},
		{[]string{"promote", "shop", "1.4.0", "--to", "prod", "-o", "xml"}, "--output"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			f, url := newSeqFake(t, nil)
			code, _, stderr := runCLI(t, url, "", tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			if n := len(f.all()); n != 0 {
				t.Errorf("a usage error sent %d requests", n)
			}
		})
	}
}

func TestPromoteEmergencyOpensReview(t *testing.T) {
	t.Parallel()
	em := map[string]string{"incident": "INC-4711", "reason": "checkout down"}
	review := `{"apiVersion":"airlock.dev/v1","kind":"Review","metadata":{"name":"shop-1.4.0.to.test.review"},"spec":{"promotion":"` + promoName + `","app":"shop","futureField":1,"dueAt":"2026-11-28T15:00:00Z"},"status":{"phase":"Open"}}`
	f, url := newSeqFake(t, map[string][]route{
		"POST /api/v1/promotions":                       {{201, promotionObj("Succeeded", "emergency", em, "shop-1.4.0.to.test.review", gatePass)}},
		"GET /api/v1/reviews/shop-1.4.0.to.test.review": {{200, review}},
	})
	code, stdout, stderr := runCLI(t, url, "", "promote", "shop", "1.4.0", "--to", "test", "--emergency", "--incident", "INC-4711", "--reason", "checkout down")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if body := f.all()[0].Body; body != `{"app":"shop","version":"1.4.0","to":"test","emergency":{"incident":"INC-4711","reason":"checkout down"}}` {
		t.Errorf("body = %s", body)
	}
	if want := "EMERGENCY: this promotion opened review shop-1.4.0.to.test.review due at 2026-11-28T15:00:00Z"; !strings.Contains(stdout, want) {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
}

func TestPromoteJSONKeepsExitCode(t *testing.T) {
	t.Parallel()
	_, url := newSeqFake(t, map[string][]route{"POST /api/v1/promotions": {{201, promotionJSON("Blocked", "no", gateFail)}}})
	code, stdout, _ := runCLI(t, url, "", "promote", "shop", "1.4.0", "--to", "test", "-o", "json")
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(stdout), &obj); err != nil || obj["kind"] != "Promotion" {
		t.Errorf("stdout is not the Promotion: %v\n%s", err, stdout)
	}
}

func evidenceJSON(name, typ, format string, trusted bool, signer, reason string, facts map[string]any) string {
	spec := map[string]any{"app": "shop", "version": "1.4.0", "release": "shop-1.4.0", "type": typ, "name": "", "digest": "sha256:abc", "format": format,
		"facts": facts, "trusted": trusted, "signer": signer, "trustReason": reason, "submittedBy": "ci"}
	if typ == "tests" {
		spec["suite"] = "unit"
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "airlock.dev/v1", "kind": "Evidence", "metadata": map[string]any{"name": name, "createdAt": "2026-11-27T14:00:00Z"}, "spec": spec})
	return string(b)
}

var testsFacts = map[string]any{"tests.passed": 48, "tests.failed": 0, "tests.total": 48}

func TestEvidenceAdd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	report := filepath.Join(dir, "report.xml")
	if err := os.WriteFile(report, []byte(`<testsuite tests="1"/>`), 0o600); err != nil {
		t.Fatal(err)
	}
	trusted := evidenceJSON("ev-1", "tests", "junit", true, "github-actions-shop", "", testsFacts)
	untrusted := evidenceJSON("ev-1", "tests", "junit", false, "", "not signed", testsFacts)
	tests := []struct {
		name       string
		answer     string
		stdin      string
		args       []string
		wantQuery  string
		wantBody   string
		wantStdout string
	}{
		{"file, trusted", trusted, "", []string{report}, "app=shop&type=tests&version=1.4.0", `<testsuite tests="1"/>`,
			"evidence/ev-1 tests (junit, unit suite) attached to shop 1.4.0: trusted by github-actions-shop\n  48 passed, 0 failed\n"},
		{"stdin, untrusted, suite and name", untrusted, "<from stdin/>", []string{"-", "--suite", "e2e", "--name", "api"}, "app=shop&name=api&suite=e2e&type=tests&version=1.4.0", "<from stdin/>",
			"evidence/ev-1 tests (junit, unit suite) attached to shop 1.4.0: untrusted: not signed\n  48 passed, 0 failed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, url := newSeqFake(t, map[string][]route{"POST /api/v1/evidence": {{201, tt.answer}}})
			argv := append([]string{"evidence", "add", "shop", "1.4.0", "--type", "tests"}, tt.args...)
			code, stdout, stderr := runCLI(t, url, tt.stdin, argv...)
			if code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr)
			}
			r := f.all()[0]
			if r.Query != tt.wantQuery || r.Body != tt.wantBody || r.ContentType != "application/octet-stream" {
				t.Errorf("request ?%s [%s] %q, want ?%s %q", r.Query, r.ContentType, r.Body, tt.wantQuery, tt.wantBody)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
		})
	}
}

func TestEvidenceAddSignoff(t *testing.T) {
	t.Parallel()
	answer := evidenceJSON("ev-2", "signoff", "signoff", false, "", "a sign-off is a person's word", map[string]any{"signoff.kind": "uat", "signoff.role": "business-owner"})
	f, url := newSeqFake(t, map[string][]route{"POST /api/v1/signoffs": {{201, answer}}})
	code, stdout, stderr := runCLI(t, url, "", "evidence", "add", "shop", "1.4.0", "--type", "signoff", "--kind", "uat", "--role", "business-owner", "--reason", "UAT passed", "--reference", "QA-12")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	r := f.all()[0]
	if r.Query != "app=shop&version=1.4.0" || r.Body != `{"kind":"uat","role":"business-owner","reason":"UAT passed","reference":"QA-12"}` {
		t.Errorf("request ?%s %s", r.Query, r.Body)
	}
	if !strings.Contains(stdout, "evidence/ev-2 signoff (signoff) attached to shop 1.4.0") || !strings.Contains(stdout, "uat as business-owner") {
		t.Errorf("stdout = %q", stdout)
	}
}

func TestEvidenceAddErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.xml")
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"shop", "1.4.0", "report.xml"}, 2, "--type is required"},
		{[]string{"shop", "1.4.0", "--type", "junit", "report.xml"}, 2, `unknown evidence type "junit"`},
		{[]string{"shop", "1.4.0", "--type", "tests"}, 2, "give the report FILE"},
		{[]string{"shop", "1.4.0", "--type", "sast", "--suite", "unit", "r.sarif"}, 2, "--suite is for --type tests only"},
		{[]string{"shop", "1.4.0", "--type", "tests", "--suite", "system", "r.xml"}, 2, `--suite "system" is not one of unit|integration|contract|e2e|smoke`},
		{[]string{"shop", "1.4.0", "--type", "tests", "--role", "qa", "r.xml"}, 2, "--role is for --type signoff only"},
		{[]string{"shop", "1.4.0", "--type", "signoff", "--kind", "uat", "--role", "qa", "--reason", "ok", "file"}, 2, "a sign-off has no FILE"},
		{[]string{"shop", "1.4.0", "--type", "signoff", "--role", "qa", "--reason", "ok"}, 2, "--kind is required"},
		{[]string{"shop", "1.4.0", "--type", "signoff", "--kind", "uat", "--reason", "ok"}, 2, "--role is required"},
		{[]string{"shop", "1.4.0", "--type", "signoff", "--kind", "uat", "--role", "qa"}, 2, "--reason is required"},
		{[]string{"shop", "1.4.0", "--type", "tests", missing}, 1, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			f, url := newSeqFake(t, nil)
			code, _, stderr := runCLI(t, url, "", append([]string{"evidence", "add"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.want) {
				t.Errorf("code %d, stderr %q; want %d and %q", code, stderr, tt.wantCode, tt.want)
			}
			if n := len(f.all()); n != 0 {
				t.Errorf("sent %d requests", n)
			}
		})
	}
}

func TestEvidenceAddRejectedReportIsBlocked(t *testing.T) {
	t.Parallel()
	_, url := newSeqFake(t, map[string][]route{"POST /api/v1/evidence": {problem(422, "SARIF 2.1.0: image digest sha256:bbb is not the release's artifact")}})
	code, _, stderr := runCLI(t, url, "x", "evidence", "add", "shop", "1.4.0", "--type", "container-scan", "-")
	if code != 3 || !strings.Contains(stderr, "is not the release's artifact") {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
}

func TestEvidenceList(t *testing.T) {
	t.Parallel()
	items := []string{
		evidenceJSON("ev-3", "perf", "k6", false, "", "", map[string]any{"perf.p95_ms": 120.04, "perf.error_rate": 0.001}),
		evidenceJSON("ev-2", "sast", "sarif-2.1.0", true, "ci", "", map[string]any{"sast.count.critical": 0, "sast.count.high": 1, "sast.max_severity": "high"}),
		evidenceJSON("ev-1", "tests", "junit", true, "ci", "", testsFacts),
		evidenceJSON("ev-4", "coverage", "go-coverprofile", false, "", "", map[string]any{"coverage.line_percent": 83.44}),
		evidenceJSON("ev-5", "sbom", "cyclonedx-1.5", false, "", "", map[string]any{"sbom.components": 212}),
	}
	f, url := newSeqFake(t, map[string][]route{"GET /api/v1/evidence": {{200, `{"kind":"List","items":[` + strings.Join(items, ",") + `]}`}}})
	code, stdout, stderr := runCLI(t, url, "", "evidence", "list", "shop", "1.4.0")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if q := f.all()[0].Query; q != "selector=release%3Dshop-1.4.0" {
		t.Errorf("query = %s", q)
	}
	want := "" +
		"TYPE       SUITE    NAME     FORMAT            TRUSTED   SIGNER   KEY      FACTS                    AGE\n" +
		"tests      unit     <none>   junit             yes       ci       <none>   48 passed, 0 failed      60m\n" +
		"coverage   <none>   <none>   go-coverprofile   no        <none>   <none>   83.4% lines              60m\n" +
		"sast       <none>   <none>   sarif-2.1.0       yes       ci       <none>   0 critical, 1 high       60m\n" +
		"sbom       <none>   <none>   cyclonedx-1.5     no        <none>   <none>   212 components           60m\n" +
		"perf       <none>   <none>   k6                no        <none>   <none>   p95 120ms, errors 0.1%   60m\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
}

func TestGetTablesForPromotionKinds(t *testing.T) {
	t.Parallel()
	promo := promotionObj("Blocked", "no", map[string]string{"incident": "INC-1", "reason": "r"}, "", gatePass, gateFail)
	reviewDue := `{"kind":"Review","metadata":{"name":"r1","createdAt":"2026-11-26T14:00:00Z"},"spec":{"app":"shop","version":"1.4.0","environment":"prod","incident":"INC-1","dueAt":"2026-11-27T12:00:00Z"},"status":{"phase":"Open","overdue":true,"missing":"1 sre"}}`
	reviewOpen := `{"kind":"Review","metadata":{"name":"r2","createdAt":"2026-11-27T14:00:00Z"},"spec":{"app":"shop","version":"1.4.1","environment":"prod","incident":"INC-2","dueAt":"2026-11-28T14:00:00Z"},"status":{"phase":"Open"}}`
	key := `{"kind":"Key","metadata":{"name":"ci","createdAt":"2026-11-27T14:00:00Z"},"spec":{"algorithm":"ed25519","keyID":"0123456789abcdef","identity":"github-actions","publicKey":"PEM"}}`
	tests := []struct {
		kind, body string
		want       []string
	}{
		{"promotions", promo, []string{"NAME                 APP    VERSION   FROM   TO     PHASE     GATES      EMERGENCY   AGE", promoName + "   shop   1.4.0     dev    test   Blocked   1/2 pass   INC-1       60m"}},
		{"reviews", reviewDue + "," + reviewOpen, []string{"NAME   APP    VERSION   ENV    INCIDENT   PHASE   MISSING   DUE      OVERDUE      AGE", "r1     shop   1.4.0     prod   INC-1      Open    1 sre     3h ago   OVERDUE 3h   25h", "r2     shop   1.4.1     prod   INC-2      Open    -         in 23h   no           60m"}},
		{"keys", key, []string{"NAME   ALGORITHM   KEY-ID             IDENTITY         DESCRIPTION   AGE", "ci     ed25519     0123456789abcdef   github-actions   <none>        60m"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			_, url := newSeqFake(t, map[string][]route{"GET /api/v1/" + tt.kind: {{200, `{"kind":"List","items":[` + tt.body + `]}`}}})
			code, stdout, stderr := runCLI(t, url, "", "get", tt.kind)
			if code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("stdout =\n%s", stdout)
			}
			for i := range lines {
				if strings.TrimRight(lines[i], " ") != tt.want[i] {
					t.Errorf("line %d = %q\nwant       %q", i, lines[i], tt.want[i])
				}
			}
		})
	}
}

func TestReviewList(t *testing.T) {
	t.Parallel()
	body := `{"kind":"List","items":[{"kind":"Review","metadata":{"name":"r1"},"spec":{"app":"shop","dueAt":"2026-11-27T12:00:00Z"},"status":{"phase":"Open","overdue":true}}]}`
	_, url := newSeqFake(t, map[string][]route{"GET /api/v1/reviews": {{200, body}}})
	code, stdout, _ := runCLI(t, url, "", "review", "list")
	if code != 0 || !strings.Contains(stdout, "OVERDUE 3h") {
		t.Errorf("code %d, stdout %q", code, stdout)
	}
}

func TestKeyCommands(t *testing.T) {
	t.Parallel()
	pem := filepath.Join(t.TempDir(), "ci.pub")
	if err := os.WriteFile(pem, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := `{"kind":"Key","metadata":{"name":"ci"},"spec":{"publicKey":"-----BEGIN PUBLIC KEY-----","algorithm":"ed25519","keyID":"0123456789abcdef","identity":"github-actions","description":"shop CI"}}`
	f, url := newSeqFake(t, map[string][]route{
		"POST /api/v1/keys":      {{201, key}},
		"DELETE /api/v1/keys/ci": {{200, `{"deleted":"Key/ci"}`}},
	})
	code, stdout, stderr := runCLI(t, url, "", "key", "add", "ci", "--public-key", pem, "--identity", "github-actions", "--description", "shop CI")
	if code != 0 || stdout != "key/ci added: ed25519 key 0123456789abcdef signs for github-actions\n" {
		t.Errorf("add: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var sent map[string]string
	if err := json.Unmarshal([]byte(f.all()[0].Body), &sent); err != nil || !strings.HasPrefix(sent["publicKey"], "-----BEGIN PUBLIC KEY-----") || sent["identity"] != "github-actions" || sent["description"] != "shop CI" {
		t.Errorf("sent %v (%v)", sent, err)
	}
	code, stdout, _ = runCLI(t, url, "", "key", "remove", "ci", "--reason", "rotated")
	if r := f.all()[1]; code != 0 || stdout != "key/ci removed\n" || r.Query != "reason=rotated" {
		t.Errorf("remove: code %d, stdout %q, query %q", code, stdout, r.Query)
	}
	if code, _, stderr := runCLI(t, url, "", "key", "add", "ci"); code != 2 || !strings.Contains(stderr, "--public-key is required") {
		t.Errorf("add without key: code %d, %q", code, stderr)
	}
	if code, _, _ := runCLI(t, url, "", "key", "add", "ci", "--public-key", pem+".missing"); code != 1 {
		t.Errorf("missing key file: code %d", code)
	}
	if n := len(f.all()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}
