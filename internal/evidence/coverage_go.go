package evidence

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Go coverprofiles as `go test -coverprofile` writes them:
//
//	mode: set
//	example.com/calc/mathx/mathx.go:7.24,7.40 1 1
//
// each block line being file:startLine.startCol,endLine.endCol, its number
// of statements and its execution count. A profile merged from several runs
// (`go test -coverpkg=./...` over several packages, or profiles
// concatenated) lists a block more than once; as `go tool cover` does, a
// block counts once and is covered when any of its lines says so. Repeated
// mode lines are accepted when they agree. line_percent is the statement
// percentage `go tool cover -func` prints as its total.

var _ = register(Coverage, "go-coverprofile", sniffCoverprofile, parseCoverprofile)

const coverprofileFormat = "Go coverprofile"

const maxCoverprofileLine = 64 << 10

func sniffCoverprofile(head []byte) bool {
	return bytes.HasPrefix(firstLine(head), []byte("mode:"))
}

// coverKey identifies a block: its file (by index into the file names)
// and its start and end positions. It keeps a profile's memory to a few
// dozen bytes per distinct block, whatever the file names' length.
type coverKey struct {
	file                     int32
	sLine, sCol, eLine, eCol uint32
}

type coverBlock struct {
	stmts   int64
	covered bool
}

func parseCoverprofile(r io.Reader, _ Options) (*Report, error) {
	sc := bufio.NewScanner(newLimitReader(r, coverprofileFormat))
	sc.Buffer(make([]byte, 0, 64<<10), maxCoverprofileLine)
	var (
		mode   string
		lineNo int
		blocks = map[coverKey]coverBlock{}
		files  = map[string]int32{} // file name → index
	)
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if m, ok := bytes.CutPrefix(line, []byte("mode:")); ok {
			m = bytes.TrimSpace(m)
			switch string(m) {
			case "set", "count", "atomic":
			default:
				return nil, Errorf(coverprofileFormat, "line %d: mode %q, want set, count or atomic", lineNo, m)
			}
			if mode != "" && mode != string(m) {
				return nil, Errorf(coverprofileFormat, "line %d: mode %q contradicts the earlier mode %q (profiles of different modes cannot be merged)", lineNo, m, mode)
			}
			mode = string(m)
			continue
		}
		if mode == "" {
			return nil, Errorf(coverprofileFormat, "line %d: first line must be \"mode: set|count|atomic\"", lineNo)
		}
		file, key, stmts, count, err := coverprofileLine(line)
		if err != nil {
			return nil, Errorf(coverprofileFormat, "line %d: %v", lineNo, err)
		}
		id, ok := files[string(file)]
		if !ok {
			id = int32(len(files))
			files[string(file)] = id
		}
		key.file = id
		b, seen := blocks[key]
		if seen && b.stmts != stmts {
			return nil, Errorf(coverprofileFormat, "line %d: block %s has %d statements here and %d before", lineNo, line[:bytes.LastIndexByte(line[:bytes.LastIndexByte(line, ' ')], ' ')], stmts, b.stmts)
		}
		b.stmts = stmts
		b.covered = b.covered || count > 0
		blocks[key] = b
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, Errorf(coverprofileFormat, "line %d: longer than %d KiB", lineNo+1, maxCoverprofileLine>>10)
		}
		return nil, asFormatError(coverprofileFormat, err, "")
	}
	if mode == "" {
		return nil, Errorf(coverprofileFormat, "no \"mode:\" line; not a coverprofile")
	}
	var c coverageTally
	for _, b := range blocks {
		c.linesTotal += b.stmts
		if b.covered {
			c.linesCovered += b.stmts
		}
	}
	c.files = len(files)
	return c.report("go-coverprofile"), nil
}

// coverprofileLine splits "file:1.2,3.4 stmts count". File names may hold
// spaces and colons, so it is read from the right. The key it returns has
// the positions; its file is left for the caller.
func coverprofileLine(line []byte) (file []byte, key coverKey, stmts int64, count uint64, err error) {
	malformed := errors.New(`want "file:line.col,line.col statements count"`)
	sp := bytes.LastIndexByte(line, ' ')
	if sp < 0 {
		return nil, key, 0, 0, malformed
	}
	count, err = strconv.ParseUint(string(line[sp+1:]), 10, 64)
	if err != nil {
		return nil, key, 0, 0, errors.New("count is not a non-negative integer")
	}
	rest := line[:sp]
	sp = bytes.LastIndexByte(rest, ' ')
	if sp < 0 {
		return nil, key, 0, 0, malformed
	}
	n, err := strconv.ParseUint(string(rest[sp+1:]), 10, 31)
	if err != nil {
		return nil, key, 0, 0, errors.New("statement count is not a non-negative integer")
	}
	rest = rest[:sp]
	colon := bytes.LastIndexByte(rest, ':')
	if colon <= 0 {
		return nil, key, 0, 0, errors.New("block has no file name")
	}
	file, pos := rest[:colon], rest[colon+1:]
	start, end, ok := bytes.Cut(pos, []byte(","))
	if ok {
		key.sLine, key.sCol, ok = lineCol(start)
	}
	if ok {
		key.eLine, key.eCol, ok = lineCol(end)
	}
	if !ok {
		return nil, key, 0, 0, errors.New("block position is not line.col,line.col")
	}
	return file, key, int64(n), count, nil
}

// lineCol reads "line.col" of decimal numbers.
func lineCol(b []byte) (line, col uint32, ok bool) {
	l, c, ok := bytes.Cut(b, []byte("."))
	if !ok || !allDigits(l) || !allDigits(c) {
		return 0, 0, false
	}
	ln, err1 := strconv.ParseUint(string(l), 10, 32)
	cn, err2 := strconv.ParseUint(string(c), 10, 32)
	return uint32(ln), uint32(cn), err1 == nil && err2 == nil
}

func allDigits(b []byte) bool {
	if len(b) == 0 || len(b) > 9 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
