package evidence

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sort"
)

// `go test -json` output: one test2json event per line. Test-level pass,
// fail and skip events are counted (subtests are tests too, as in
// go-junit-report's XML); package-level events are ignored except a
// package "fail" with no failed test in it, which is a build failure, a
// TestMain exit or a crash and counts as one error. Lines that are not JSON
// objects (what `2>&1` mixes in from go build or go vet) are skipped; a
// line that starts like an object but is not one is an error.

var _ = register(Tests, "go-test-json", sniffGoTestJSON, parseGoTestJSON)

const goTestFormat = "go test -json"

const (
	maxGoTestLine     = 4 << 20 // one event; test output is split into lines by test2json
	maxGoTestPackages = 100000
)

func sniffGoTestJSON(head []byte) bool {
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] == '{' {
			return bytes.Contains(line, []byte(`"Action":`)) || bytes.Contains(line, []byte(`"Action" :`))
		}
	}
	return false
}

type goTestEvent struct {
	Action      *string
	Package     string
	Test        string
	Elapsed     *float64
	FailedBuild string
}

type goTestPackage struct {
	failedTests int
	failed      bool // a package-level fail event was seen
	failedBuild bool
}

func parseGoTestJSON(r io.Reader, opts Options) (*Report, error) {
	sc := bufio.NewScanner(newLimitReader(r, goTestFormat))
	sc.Buffer(make([]byte, 0, 64<<10), maxGoTestLine)
	var (
		tally  testTally
		pkgs   = map[string]*goTestPackage{}
		events int
		lineNo int
	)
	pkg := func(name string) (*goTestPackage, error) {
		p := pkgs[name]
		if p == nil {
			if len(pkgs) >= maxGoTestPackages {
				return nil, Errorf(goTestFormat, "line %d: more than %d packages", lineNo, maxGoTestPackages)
			}
			p = &goTestPackage{}
			pkgs[name] = p
		}
		return p, nil
	}
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var ev goTestEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			switch {
			case errors.As(err, &syn):
				return nil, Errorf(goTestFormat, "line %d: malformed JSON (truncated?): %v", lineNo, err)
			case errors.As(err, &typ):
				return nil, Errorf(goTestFormat, "line %d: field %s is a JSON %s, not a test2json value", lineNo, typ.Field, typ.Value)
			}
			return nil, Errorf(goTestFormat, "line %d: %v", lineNo, err)
		}
		if ev.Action == nil {
			return nil, Errorf(goTestFormat, "line %d: JSON object without an Action is not a test2json event", lineNo)
		}
		events++
		action := *ev.Action
		if ev.Package == "" {
			// build-output and build-fail carry an ImportPath instead; the
			// package's own fail event follows and is what counts.
			continue
		}
		p, err := pkg(ev.Package)
		if err != nil {
			return nil, err
		}
		name := ev.Package + "." + ev.Test
		switch {
		case ev.Test != "" && action == "pass":
			tally.passed++
		case ev.Test != "" && action == "fail":
			p.failedTests++
			tally.addFailed(name, false)
		case ev.Test != "" && action == "skip":
			tally.skipped++
		case ev.Test == "" && (action == "pass" || action == "fail"):
			if ev.Elapsed != nil && !math.IsNaN(*ev.Elapsed) && !math.IsInf(*ev.Elapsed, 0) && *ev.Elapsed > 0 {
				tally.duration += *ev.Elapsed
			}
			if action == "fail" {
				p.failed = true
				p.failedBuild = p.failedBuild || ev.FailedBuild != ""
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, Errorf(goTestFormat, "line %d: longer than %d MiB", lineNo+1, maxGoTestLine>>20)
		}
		return nil, asFormatError(goTestFormat, err, "")
	}
	if events == 0 {
		return nil, Errorf(goTestFormat, "no test2json events (lines of JSON objects with an Action)")
	}
	// Package failures not explained by a failed test, in a stable order.
	var broken []string
	for name, p := range pkgs {
		if p.failed && p.failedTests == 0 {
			broken = append(broken, name)
		}
	}
	sort.Strings(broken)
	for _, name := range broken {
		what := " [package failed]"
		if pkgs[name].failedBuild {
			what = " [build failed]"
		}
		tally.addFailed(name+what, true)
	}
	return tally.report("go-test-json", opts), nil
}
