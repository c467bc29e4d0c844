package evidence

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// LCOV tracefiles as lcov/geninfo, Istanbul (Jest, nyc) and c8 write them:
// records from SF:<file> to end_of_record, each with the summaries LF/LH
// (lines found/hit), BRF/BRH (branches) and FNF/FNH (functions), which are
// summed over the records. A record without LF/LH is counted from its DA
// lines. A tracefile that lists a file twice (concatenated, not merged
// with lcov -a) is summed as it stands.

var _ = register(Coverage, "lcov", sniffLCOV, parseLCOV)

const lcovFormat = "LCOV"

const maxLCOVLine = 64 << 10

func sniffLCOV(head []byte) bool {
	l := firstLine(head)
	return bytes.HasPrefix(l, []byte("TN:")) || bytes.HasPrefix(l, []byte("SF:")) || bytes.HasPrefix(l, []byte("VER:"))
}

// lcovRecord is one SF record's summaries; -1 means not given.
type lcovRecord struct {
	file               string
	startLine          int
	lf, lh             int64
	brf, brh, fnf, fnh int64
	daTotal, daHit     int64
}

func parseLCOV(r io.Reader, _ Options) (*Report, error) {
	sc := bufio.NewScanner(newLimitReader(r, lcovFormat))
	sc.Buffer(make([]byte, 0, 64<<10), maxLCOVLine)
	var (
		c      coverageTally
		rec    *lcovRecord
		files  = map[string]struct{}{}
		lineNo int
		seen   bool
	)
	fail := func(msg string, args ...any) error {
		return Errorf(lcovFormat, "line %d: "+msg, append([]any{lineNo}, args...)...)
	}
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		seen = true
		if string(line) == "end_of_record" {
			if rec == nil {
				return nil, fail("end_of_record without an SF record")
			}
			if err := rec.check(); err != nil {
				return nil, Errorf(lcovFormat, "record for %s (line %d): %v", rec.file, rec.startLine, err)
			}
			rec.addTo(&c)
			rec = nil
			continue
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fail("%q is not an LCOV KEY:value line", clipName(string(line)))
		}
		switch string(key) {
		case "TN", "VER":
			continue
		case "SF":
			if rec != nil {
				return nil, fail("SF before the end_of_record of %s (line %d)", rec.file, rec.startLine)
			}
			if len(val) == 0 {
				return nil, fail("SF with no file name")
			}
			rec = &lcovRecord{file: string(val), startLine: lineNo, lf: -1, lh: -1, brf: -1, brh: -1, fnf: -1, fnh: -1}
			files[rec.file] = struct{}{}
			continue
		}
		if rec == nil {
			return nil, fail("%s outside an SF record", key)
		}
		var dst *int64
		switch string(key) {
		case "LF":
			dst = &rec.lf
		case "LH":
			dst = &rec.lh
		case "BRF":
			dst = &rec.brf
		case "BRH":
			dst = &rec.brh
		case "FNF":
			dst = &rec.fnf
		case "FNH":
			dst = &rec.fnh
		case "DA":
			// DA:<line>,<count>[,<checksum>]
			ln, rest, ok := bytes.Cut(val, []byte(","))
			cnt, _, _ := bytes.Cut(rest, []byte(","))
			if _, err := strconv.ParseUint(string(ln), 10, 32); !ok || err != nil {
				return nil, fail("DA %q, want <line>,<count>", val)
			}
			n, err := strconv.ParseFloat(string(cnt), 64) // some tools write "1e+06" or "-1"
			if err != nil || n != n {
				return nil, fail("DA %q, want <line>,<count>", val)
			}
			rec.daTotal++
			if n > 0 {
				rec.daHit++
			}
			continue
		default:
			continue // FN, FNDA, FNL, FNA, BRDA and keys from newer tools
		}
		n, err := strconv.ParseInt(string(val), 10, 48) // bounded so sums cannot overflow
		if err != nil || n < 0 {
			return nil, fail("%s %q, want a non-negative count", key, val)
		}
		*dst = n
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, Errorf(lcovFormat, "line %d: longer than %d KiB", lineNo+1, maxLCOVLine>>10)
		}
		return nil, asFormatError(lcovFormat, err, "")
	}
	if rec != nil {
		return nil, Errorf(lcovFormat, "record for %s (line %d) has no end_of_record; truncated?", rec.file, rec.startLine)
	}
	if !seen {
		return nil, Errorf(lcovFormat, "document is empty")
	}
	c.files = len(files)
	c.branchesKnown = c.branchesTotal > 0
	c.functionsKnown = c.functionsTotal > 0
	return c.report("lcov"), nil
}

func (r *lcovRecord) check() error {
	for _, p := range []struct {
		found, hit int64
		f, h       string
	}{{r.lf, r.lh, "LF", "LH"}, {r.brf, r.brh, "BRF", "BRH"}, {r.fnf, r.fnh, "FNF", "FNH"}} {
		if p.hit >= 0 && p.found < 0 {
			return errors.New(p.h + " without " + p.f)
		}
		if p.hit > p.found && p.found >= 0 {
			return errors.New(p.h + " " + strconv.FormatInt(p.hit, 10) + " is greater than " + p.f + " " + strconv.FormatInt(p.found, 10))
		}
	}
	return nil
}

func (r *lcovRecord) addTo(c *coverageTally) {
	if r.lf >= 0 {
		c.linesTotal += r.lf
		c.linesCovered += max(r.lh, 0)
	} else {
		c.linesTotal += r.daTotal
		c.linesCovered += r.daHit
	}
	c.branchesTotal += max(r.brf, 0)
	c.branchesCovered += max(r.brh, 0)
	c.functionsTotal += max(r.fnf, 0)
	c.functionsHit += max(r.fnh, 0)
}
