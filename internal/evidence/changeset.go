package evidence

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Changesets: the list of changed paths `git diff --name-only` prints, one
// per line. Lines are trimmed and blank ones ignored. Git quotes a path
// with unusual bytes ("caf\303\251.txt"); such a path is unquoted when the
// result is valid UTF-8 and kept quoted otherwise, so facts stay valid
// strings. NUL bytes (output of -z) and tabs (output of --name-status) are
// rejected, as are paths over maxPathBytes and more than maxChangesetPaths
// lines.

var _ = register(Changeset, "git-name-only", sniffChangeset, parseChangeset)

const changesetFormat = "git diff --name-only"

const (
	maxPathBytes        = 4096
	maxChangesetPaths   = 100000
	maxChangesetKept    = 10000
	maxChangesetLineBuf = maxPathBytes*4 + 16 // a quoted path is up to 4 bytes per byte
)

// sniffChangeset claims plain text: anything that is not XML, JSON, a
// coverprofile or an LCOV tracefile (which the dispatcher then names).
func sniffChangeset(head []byte) bool {
	if xmlRoot(head) != "" || looksJSON(head) || sniffCoverprofile(head) || sniffLCOV(head) {
		return false
	}
	return true
}

func parseChangeset(r io.Reader, _ Options) (*Report, error) {
	sc := bufio.NewScanner(newLimitReader(r, changesetFormat))
	sc.Buffer(make([]byte, 0, maxChangesetLineBuf), maxChangesetLineBuf)
	var (
		seen   = map[string]struct{}{}
		lineNo int
		lines  int
	)
	for sc.Scan() {
		lineNo++
		raw := sc.Bytes()
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			return nil, Errorf(changesetFormat, "line %d: NUL byte; send newline-separated output (without -z)", lineNo)
		}
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			continue
		}
		lines++
		if lines > maxChangesetPaths {
			return nil, Errorf(changesetFormat, "more than %d paths", maxChangesetPaths)
		}
		if bytes.IndexByte(line, '\t') >= 0 {
			return nil, Errorf(changesetFormat, "line %d: tab in a path; this looks like --name-status or --stat output, send --name-only", lineNo)
		}
		p := string(line)
		if len(line) >= 2 && line[0] == '"' && line[len(line)-1] == '"' {
			if u, err := strconv.Unquote(p); err == nil && utf8.ValidString(u) && u != "" {
				p = u
			}
		}
		if len(p) > maxPathBytes {
			return nil, Errorf(changesetFormat, "line %d: path is %d bytes, over the %d-byte limit", lineNo, len(p), maxPathBytes)
		}
		if !utf8.ValidString(p) {
			return nil, Errorf(changesetFormat, "line %d: path is not valid UTF-8 (git quotes such paths unless core.quotePath is false)", lineNo)
		}
		if strings.IndexByte(p, 0) >= 0 {
			return nil, Errorf(changesetFormat, "line %d: path holds a NUL byte", lineNo)
		}
		seen[p] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, Errorf(changesetFormat, "line %d: path is over the %d-byte limit", lineNo+1, maxPathBytes)
		}
		return nil, asFormatError(changesetFormat, err, "")
	}
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	truncated := len(paths) > maxChangesetKept
	count := len(paths)
	if truncated {
		paths = paths[:maxChangesetKept:maxChangesetKept]
	}
	return &Report{
		Type:   Changeset,
		Format: "git-name-only",
		Facts: map[string]any{
			"changeset.paths":     paths,
			"changeset.count":     float64(count),
			"changeset.truncated": truncated,
		},
	}, nil
}
