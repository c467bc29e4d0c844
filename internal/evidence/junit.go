package evidence

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JUnit XML as go-junit-report, Maven Surefire, pytest --junitxml, Jest
// (jest-junit) and node --test write it: a <testsuites> root holding
// <testsuite> elements (which may nest), or a single <testsuite> root, with
// <testcase> elements whose <failure>, <error> or <skipped> child says how
// they ended. It is read token by token, never as a tree.

var _ = register(Tests, "junit", sniffJUnit, parseJUnit)

const junitFormat = "JUnit XML"

// maxFailedNames bounds tests.failed_names; maxNameBytes bounds each name.
const (
	maxFailedNames = 20
	maxNameBytes   = 256
	maxXMLDepth    = 256
)

func sniffJUnit(head []byte) bool {
	root := xmlRoot(head)
	return root == "testsuites" || root == "testsuite"
}

// testTally is what the tests facts are computed from.
type testTally struct {
	passed, failures, errors, skipped int
	duration                          float64
	failedNames                       []string
}

func (t *testTally) addFailed(name string, isError bool) {
	if isError {
		t.errors++
	} else {
		t.failures++
	}
	if len(t.failedNames) < maxFailedNames {
		t.failedNames = append(t.failedNames, clipName(name))
	}
}

// report builds the tests report. Every count is a float64 so facts map
// directly onto CEL numbers.
func (t *testTally) report(format string, opts Options) *Report {
	suite := opts.Suite
	if suite == "" {
		suite = Unit
	}
	failed := t.failures + t.errors
	names := t.failedNames
	if names == nil {
		names = []string{}
	}
	return &Report{
		Type:   Tests,
		Format: format,
		Facts: map[string]any{
			"tests.total":            float64(t.passed + failed + t.skipped),
			"tests.passed":           float64(t.passed),
			"tests.failed":           float64(failed),
			"tests.errors":           float64(t.errors),
			"tests.skipped":          float64(t.skipped),
			"tests.duration_seconds": math.Round(t.duration*1000) / 1000,
			"tests.suite":            string(suite),
			"tests.failed_names":     names,
		},
	}
}

// clipName cuts a test name to maxNameBytes at a rune boundary.
func clipName(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	if len(s) <= maxNameBytes {
		return s
	}
	cut := maxNameBytes - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// junitFrame is one open element.
type junitFrame struct {
	kind     byte // 's' suite(s), 'c' testcase, 'o' other
	name     string
	hasTime  bool
	time     float64 // the element's own time attribute
	children float64 // sum of the children's durations
	// suites: declared failures+errors, and failures+errors counted from
	// the testcases inside (including extras from nested suites).
	declared int
	counted  int
	// testcases
	failure, err, skipped bool
}

func (f *junitFrame) duration() float64 {
	if f.hasTime {
		return f.time
	}
	return f.children
}

func parseJUnit(r io.Reader, opts Options) (*Report, error) {
	d := xml.NewDecoder(newLimitReader(r, junitFormat))
	d.Strict = true
	var (
		tally    testTally
		stack    []junitFrame
		rootSeen bool
		rootDone bool
	)
	lineErr := func(msg string, args ...any) error {
		line, _ := d.InputPos()
		return Errorf(junitFormat, "line %d: "+msg, append([]any{line}, args...)...)
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, xmlError(junitFormat, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if rootDone {
				return nil, lineErr("element <%s> after the root element ended", tok.Name.Local)
			}
			if len(stack) >= maxXMLDepth {
				return nil, lineErr("elements nested deeper than %d", maxXMLDepth)
			}
			local := tok.Name.Local
			if !rootSeen {
				rootSeen = true
				if local != "testsuites" && local != "testsuite" {
					return nil, lineErr("root element is <%s>, want <testsuites> or <testsuite>", local)
				}
			}
			var parent *junitFrame
			if len(stack) > 0 {
				parent = &stack[len(stack)-1]
			}
			f := junitFrame{kind: 'o'}
			switch {
			case (local == "testsuites" || local == "testsuite") && (parent == nil || parent.kind == 's'):
				f.kind = 's'
				f.name = attr(tok, "name")
				for _, a := range []string{"failures", "errors"} {
					v := attr(tok, a)
					if v == "" {
						continue
					}
					n, err := strconv.Atoi(strings.TrimSpace(v))
					if err != nil || n < 0 {
						return nil, lineErr("<%s name=%q> has %s=%q, want a count", local, f.name, a, v)
					}
					f.declared += n
				}
				f.time, f.hasTime = junitTime(attr(tok, "time"))
			case local == "testcase" && parent != nil && parent.kind == 's':
				f.kind = 'c'
				f.name = testcaseName(attr(tok, "classname"), attr(tok, "name"))
				f.time, f.hasTime = junitTime(attr(tok, "time"))
			case parent != nil && parent.kind == 'c':
				// Only these direct children decide the outcome; Surefire's
				// flakyFailure/rerunFailure and system-out do not.
				switch local {
				case "failure":
					parent.failure = true
				case "error":
					parent.err = true
				case "skipped":
					parent.skipped = true
				}
			}
			stack = append(stack, f)
		case xml.EndElement:
			// The decoder (Strict) has checked the end matches the start.
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			var parent *junitFrame
			if len(stack) > 0 {
				parent = &stack[len(stack)-1]
			}
			switch f.kind {
			case 'c':
				failed := f.err || f.failure
				switch {
				case failed:
					tally.addFailed(f.name, f.err)
				case f.skipped:
					tally.skipped++
				default:
					tally.passed++
				}
				if failed {
					parent.counted++
				}
				parent.children += f.duration()
			case 's':
				// A suite that declares more failures than its testcases
				// show (a class-level setup error, a crash) fails by the
				// difference: never report fewer failures than the tool did.
				if extra := f.declared - f.counted; extra > 0 {
					name := f.name
					if name == "" {
						name = "testsuite"
					}
					for i := 0; i < extra; i++ {
						tally.addFailed(name+" [suite error]", true)
					}
					f.counted += extra
				}
				if parent != nil {
					parent.counted += f.counted
					parent.children += f.duration()
				} else {
					tally.duration = f.duration()
					rootDone = true
				}
			}
			if parent == nil {
				rootDone = true
			}
		}
	}
	if !rootSeen {
		return nil, Errorf(junitFormat, "no root element")
	}
	if !rootDone {
		return nil, Errorf(junitFormat, "document ends before the root element is closed")
	}
	return tally.report("junit", opts), nil
}

// testcaseName joins a testcase's classname and name the way the tools'
// own reports do ("pkg.TestX", "com.example.FooTest.bar"), leaving out a
// classname that only repeats the name (Jest).
func testcaseName(class, name string) string {
	class, name = strings.TrimSpace(class), strings.TrimSpace(name)
	if class == "" || class == name {
		return name
	}
	if name == "" {
		return class
	}
	return class + "." + name
}

// junitTime reads a time attribute in seconds. Tools write "0.003",
// "1.5e-3" and, for Surefire in some locales, "1,234.5"; anything that is
// still not a finite, non-negative number is ignored rather than failing a
// whole report over a duration.
func junitTime(s string) (float64, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, false
	}
	return v, true
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// xmlError turns an encoding/xml error into a FormatError with its line.
func xmlError(format string, err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return Errorf(format, "line %d: malformed XML: %s", se.Line, se.Msg)
	}
	return asFormatError(format, err, "malformed XML")
}
