package logs

import "strings"

// Param is the token that stands for a variable part of a template.
const Param = "<*>"

// Mask replaces the variable spans of s with Param: quoted strings,
// UUIDs, timestamps and clock times, IPv4 addresses (with a port) and IPv6
// addresses, 0x-prefixed hex, hex runs of 8 or more with a digit,
// durations (3ms, 1h2m3.5s) and numbers (including dotted versions such as
// 1.2.0). A span is masked only when it starts and ends at a word boundary,
// so `id=123` becomes `id=<*>` but `http2` and `sha256` stay. Mask never
// adds whitespace and every masked span is at least one byte long.
func Mask(s string) string {
	var b strings.Builder
	copied := 0 // s[:copied] is already in b (or unchanged when b is empty)
	i := 0
	for i < len(s) {
		c := s[i]
		if i == 0 || !isWord(s[i-1]) {
			n := 0
			if c == '"' || c == '\'' {
				n = quoted(s[i:])
			} else {
				n = variable(s[i:])
			}
			if n > 0 && (i+n == len(s) || !isWord(s[i+n])) {
				if b.Len() == 0 {
					b.Grow(len(s))
				}
				b.WriteString(s[copied:i])
				b.WriteString(Param)
				i += n
				copied = i
				continue
			}
		}
		if isWord(c) {
			for i < len(s) && isWord(s[i]) {
				i++
			}
			continue
		}
		i++
	}
	if copied == 0 {
		return s
	}
	b.WriteString(s[copied:])
	return b.String()
}

// isWord reports whether c continues a word. Bytes of multi-byte runes
// count as word bytes.
func isWord(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c >= 0x80
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// quoted returns the length of the quoted string at the start of s,
// closing quote included, or 0 when it is not closed.
func quoted(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1
		}
	}
	return 0
}

// variable returns the length of the variable span at the start of s, or
// 0. The caller checks the boundary after it; each matcher is tried in
// turn and the first one that ends at a boundary wins.
func variable(s string) int {
	ms := matchers[:]
	switch c := s[0]; {
	case isDigit(c):
	case isHex(c) || c == ':':
		ms = letterMatchers[:] // a span that starts with a-f or ':' is one of these
	default:
		return 0
	}
	for _, m := range ms {
		if n := m(s); n > 0 && (n == len(s) || !isWord(s[n])) {
			return n
		}
	}
	return 0
}

var (
	matchers       = [...]func(string) int{uuid, timestamp, clock, ipv4, ipv6, hex0x, hexRun, duration, number}
	letterMatchers = [...]func(string) int{uuid, ipv6, hexRun}
)

// digits returns the length of the run of decimal digits at the start of s.
func digits(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}

func hexes(s string) int {
	n := 0
	for n < len(s) && isHex(s[n]) {
		n++
	}
	return n
}

// uuid matches 8-4-4-4-12 hex digits.
func uuid(s string) int {
	if len(s) < 36 {
		return 0
	}
	for i := range 36 {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return 0
			}
		default:
			if !isHex(s[i]) {
				return 0
			}
		}
	}
	return 36
}

// timestamp matches a date (2006-01-02 or 2006/01/02), optionally followed
// by T or one space and a clock time, fraction and zone.
func timestamp(s string) int {
	if len(s) < 10 || digits(s) != 4 || (s[4] != '-' && s[4] != '/') || digits(s[5:]) != 2 || s[7] != s[4] || digits(s[8:]) != 2 {
		return 0
	}
	n := 10
	if n+1 < len(s) && (s[n] == 'T' || s[n] == ' ') {
		if m := clock(s[n+1:]); m > 0 {
			n += 1 + m
			if n < len(s) && s[n] == 'Z' {
				n++
			} else if n < len(s) && (s[n] == '+' || s[n] == '-') {
				switch d := digits(s[n+1:]); {
				case d == 4:
					n += 5
				case d == 2 && n+6 <= len(s) && s[n+3] == ':' && digits(s[n+4:]) == 2:
					n += 6
				}
			}
		}
	}
	return n
}

// clock matches 15:04 or 15:04:05 with an optional fraction.
func clock(s string) int {
	if digits(s) != 2 || len(s) < 5 || s[2] != ':' || digits(s[3:]) != 2 {
		return 0
	}
	n := 5
	if n+2 < len(s) && s[n] == ':' && digits(s[n+1:]) == 2 {
		n += 3
		if n+1 < len(s) && (s[n] == '.' || s[n] == ',') {
			if d := digits(s[n+1:]); d > 0 {
				n += 1 + d
			}
		}
	}
	return n
}

// ipv4 matches a dotted quad with an optional :port.
func ipv4(s string) int {
	n := 0
	for part := range 4 {
		d := digits(s[n:])
		if d == 0 || d > 3 {
			return 0
		}
		n += d
		if part < 3 {
			if n >= len(s) || s[n] != '.' {
				return 0
			}
			n++
		}
	}
	if n+1 < len(s) && s[n] == ':' {
		if d := digits(s[n+1:]); d > 0 && d <= 5 {
			n += 1 + d
		}
	}
	return n
}

// ipv6 matches colon-separated groups of at most four hex digits with at
// least two colons and one decimal digit (so words like add:bed:fee stay).
func ipv6(s string) int {
	n, colons, groups := 0, 0, 0
	hasDigit := false
	for n < len(s) {
		if s[n] == ':' {
			colons++
			n++
			continue
		}
		h := hexes(s[n:])
		if h == 0 || h > 4 {
			break
		}
		for _, c := range []byte(s[n : n+h]) {
			if isDigit(c) {
				hasDigit = true
			}
		}
		groups++
		n += h
	}
	if colons < 2 || colons > 7 || groups == 0 || !hasDigit {
		return 0
	}
	// A trailing single colon belongs to the prose ("addr 1::2: refused").
	if s[n-1] == ':' && (n < 2 || s[n-2] != ':') {
		n--
	}
	return n
}

// hex0x matches 0x followed by hex digits.
func hex0x(s string) int {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return 0
	}
	if h := hexes(s[2:]); h > 0 {
		return 2 + h
	}
	return 0
}

// hexRun matches 8 or more hex digits that include a decimal digit
// (commit hashes, trace and span ids).
func hexRun(s string) int {
	h := hexes(s)
	if h < 8 {
		return 0
	}
	for _, c := range []byte(s[:h]) {
		if isDigit(c) {
			return h
		}
	}
	return 0
}

// duration matches one or more number-and-unit pairs: 3ms, 1.5s, 1h2m3s.
func duration(s string) int {
	n := 0
	for {
		d := decimal(s[n:])
		if d == 0 {
			break
		}
		u := unit(s[n+d:])
		if u == 0 {
			break
		}
		n += d + u
	}
	return n
}

func unit(s string) int {
	for _, u := range [...]string{"ns", "us", "µs", "ms", "s", "m", "h"} {
		if strings.HasPrefix(s, u) {
			// "m" must not swallow the start of "ms"/"min"-like words;
			// the boundary check after the whole match settles the rest.
			return len(u)
		}
	}
	return 0
}

// decimal matches digits with at most one fraction.
func decimal(s string) int {
	n := digits(s)
	if n > 0 && n+1 < len(s) && s[n] == '.' {
		if f := digits(s[n+1:]); f > 0 {
			n += 1 + f
		}
	}
	return n
}

// number matches digits with any number of dotted parts (3, 3.14, 1.2.0).
func number(s string) int {
	n := digits(s)
	if n == 0 {
		return 0
	}
	for n+1 < len(s) && s[n] == '.' {
		f := digits(s[n+1:])
		if f == 0 {
			break
		}
		n += 1 + f
	}
	return n
}
