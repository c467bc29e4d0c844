package evidence

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// Cobertura XML as gocover-cobertura, Istanbul (Jest, nyc), coverage.py
// and the Cobertura Maven plugin write it. The root <coverage> carries the
// totals: line-rate and branch-rate (0..1) and, since the coverage-04 DTD,
// lines-valid/lines-covered and branches-valid/branches-covered. Counts
// win over rates when both are present. Without lines-valid, the lines are
// counted from each class's <lines> (not the repeated ones under
// <methods>). Files are the distinct class filename attributes.

var _ = register(Coverage, "cobertura", sniffCobertura, parseCobertura)

const coberturaFormat = "Cobertura XML"

func sniffCobertura(head []byte) bool { return xmlRoot(head) == "coverage" }

func parseCobertura(r io.Reader, _ Options) (*Report, error) {
	d := xml.NewDecoder(newLimitReader(r, coberturaFormat))
	d.Strict = true
	var (
		c          coverageTally
		path       []string // local names of the open elements
		rootSeen   bool
		rootDone   bool
		haveCounts bool    // lines-valid on the root
		lineRate   float64 // root line-rate, -1 when absent
		counted    struct{ total, covered int64 }
		files      = map[string]struct{}{}
	)
	lineErr := func(msg string, args ...any) error {
		line, _ := d.InputPos()
		return Errorf(coberturaFormat, "line %d: "+msg, append([]any{line}, args...)...)
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, xmlError(coberturaFormat, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			local := tok.Name.Local
			if rootDone {
				return nil, lineErr("element <%s> after the root element ended", local)
			}
			if len(path) >= maxXMLDepth {
				return nil, lineErr("elements nested deeper than %d", maxXMLDepth)
			}
			if !rootSeen {
				rootSeen = true
				if local != "coverage" {
					return nil, lineErr("root element is <%s>, want <coverage>", local)
				}
				if lineRate, err = rateAttr(tok, "line-rate"); err != nil {
					return nil, lineErr("%v", err)
				}
				br, err := rateAttr(tok, "branch-rate")
				if err != nil {
					return nil, lineErr("%v", err)
				}
				lv, lc, okL, err := countPair(tok, "lines-valid", "lines-covered")
				if err != nil {
					return nil, lineErr("%v", err)
				}
				bv, bc, okB, err := countPair(tok, "branches-valid", "branches-covered")
				if err != nil {
					return nil, lineErr("%v", err)
				}
				if okL {
					haveCounts = true
					c.linesTotal, c.linesCovered = lv, lc
				}
				switch {
				case okB && bv > 0:
					c.branchesKnown, c.branchesTotal, c.branchesCovered = true, bv, bc
				case !okB && br >= 0:
					// Only a rate: old Cobertura, coverage.py without branch data.
					c.branchesKnown, c.branchRate = true, br
				}
				// branches-valid="0" means the tool measured no branches
				// (gocover-cobertura always writes branch-rate="0"): unknown.
			}
			switch {
			case local == "class" && len(path) >= 1 && path[len(path)-1] == "classes":
				if fn := attr(tok, "filename"); fn != "" {
					files[fn] = struct{}{}
				}
			case local == "line" && !haveCounts && len(path) >= 2 && path[len(path)-1] == "lines" && path[len(path)-2] == "class":
				hits := strings.TrimSpace(attr(tok, "hits"))
				n, err := strconv.ParseFloat(hits, 64)
				if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
					return nil, lineErr("<line> hits=%q, want a count", hits)
				}
				counted.total++
				if n > 0 {
					counted.covered++
				}
			}
			path = append(path, local)
		case xml.EndElement:
			path = path[:len(path)-1]
			if len(path) == 0 {
				rootDone = true
			}
		}
	}
	if !rootSeen {
		return nil, Errorf(coberturaFormat, "no root element")
	}
	if !rootDone {
		return nil, Errorf(coberturaFormat, "document ends before <coverage> is closed")
	}
	if !haveCounts {
		c.linesTotal, c.linesCovered = counted.total, counted.covered
		if counted.total == 0 && lineRate > 0 {
			// A summary-only report: a rate and no lines to count.
			c.lineRateOnly, c.lineRate = true, lineRate
		}
	}
	c.files = len(files)
	return c.report("cobertura"), nil
}

// rateAttr reads a 0..1 rate attribute; -1 when absent.
func rateAttr(se xml.StartElement, name string) (float64, error) {
	s := strings.TrimSpace(attr(se, name))
	if s == "" {
		return -1, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return 0, errors.New("<coverage> " + name + "=\"" + s + "\", want a rate from 0 to 1")
	}
	return v, nil
}

// countPair reads a valid/covered pair of count attributes; ok is false
// when the valid attribute is absent.
func countPair(se xml.StartElement, validName, coveredName string) (valid, covered int64, ok bool, err error) {
	vs, cs := strings.TrimSpace(attr(se, validName)), strings.TrimSpace(attr(se, coveredName))
	if vs == "" {
		return 0, 0, false, nil
	}
	valid, err = strconv.ParseInt(vs, 10, 64)
	if err != nil || valid < 0 {
		return 0, 0, false, errors.New("<coverage> " + validName + "=\"" + vs + "\", want a count")
	}
	covered, err = strconv.ParseInt(cs, 10, 64)
	if err != nil || covered < 0 {
		return 0, 0, false, errors.New("<coverage> " + coveredName + "=\"" + cs + "\", want a count")
	}
	if covered > valid {
		return 0, 0, false, errors.New("<coverage> " + coveredName + " " + cs + " is greater than " + validName + " " + vs)
	}
	return valid, covered, true, nil
}
