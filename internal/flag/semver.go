package flag

import (
	"errors"
	"strings"
)

// Version is a strict semantic version (semver.org 2.0.0):
// MAJOR.MINOR.PATCH, then an optional -pre-release and +build. There is no
// "v" prefix, no missing part and no leading zero in a numeric identifier.
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the pre-release, without its '-', e.g. "rc.1"; empty for a
	// release.
	Pre string
	// Build is the build metadata, without its '+'. It plays no part in
	// comparisons.
	Build string
}

var errSemver = errors.New("not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] such as 1.4.0 or 2.0.0-rc.1 (no v prefix, no leading zeros)")

// ParseVersion parses s strictly. It does not allocate.
func ParseVersion(s string) (Version, error) {
	var v Version
	if len(s) > maxVersionLen {
		return v, errSemver
	}
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build = rest[i+1:]
		rest = rest[:i]
		if !validIdents(v.Build, false) {
			return v, errSemver
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.Pre = rest[i+1:]
		rest = rest[:i]
		if !validIdents(v.Pre, true) {
			return v, errSemver
		}
	}
	var ok bool
	if v.Major, rest, ok = number(rest); !ok || !strings.HasPrefix(rest, ".") {
		return v, errSemver
	}
	if v.Minor, rest, ok = number(rest[1:]); !ok || !strings.HasPrefix(rest, ".") {
		return v, errSemver
	}
	if v.Patch, rest, ok = number(rest[1:]); !ok || rest != "" {
		return v, errSemver
	}
	return v, nil
}

const maxVersionLen = 256

// number reads a numeric identifier without leading zeros from the start of s.
func number(s string) (uint64, string, bool) {
	i := 0
	var n uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, s, false
		}
		n = n*10 + d
		i++
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return 0, s, false
	}
	return n, s[i:], true
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-]; in a
// pre-release a numeric identifier may not have leading zeros.
func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for s != "" {
		id := s
		if i := strings.IndexByte(s, '.'); i >= 0 {
			id, s = s[:i], s[i+1:]
			if s == "" {
				return false
			}
		} else {
			s = ""
		}
		if id == "" {
			return false
		}
		numeric := true
		for j := 0; j < len(id); j++ {
			c := id[j]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// Compare returns -1, 0 or +1 as v has lower, equal or higher precedence
// than w. Build metadata is ignored.
func (v Version) Compare(w Version) int {
	if c := cmpU(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmpU(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmpU(v.Patch, w.Patch); c != 0 {
		return c
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := v.Pre, w.Pre
	for a != "" && b != "" {
		var x, y string
		x, a = cutDot(a)
		y, b = cutDot(b)
		if c := cmpIdent(x, y); c != 0 {
			return c
		}
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}

func cutDot(s string) (string, string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func cmpIdent(x, y string) int {
	nx, ny := isNumeric(x), isNumeric(y)
	switch {
	case nx && ny:
		// No leading zeros: the longer number is the larger.
		if len(x) != len(y) {
			if len(x) < len(y) {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	case nx:
		return -1
	case ny:
		return 1
	}
	return strings.Compare(x, y)
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String formats v back to its canonical text.
func (v Version) String() string {
	var b strings.Builder
	b.WriteString(utoa(v.Major))
	b.WriteByte('.')
	b.WriteString(utoa(v.Minor))
	b.WriteByte('.')
	b.WriteString(utoa(v.Patch))
	if v.Pre != "" {
		b.WriteByte('-')
		b.WriteString(v.Pre)
	}
	if v.Build != "" {
		b.WriteByte('+')
		b.WriteString(v.Build)
	}
	return b.String()
}

func utoa(n uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(buf[i:])
}
