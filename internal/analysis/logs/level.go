package logs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Level is the severity of a log line. Levels are ordered: a comparison
// "at error level or above" is Level >= LevelError.
type Level int

const (
	// LevelUnknown: no level could be found in the line.
	LevelUnknown Level = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	// LevelFatal covers fatal, critical, panic, alert and emergency.
	LevelFatal
	numLevels
)

// String returns the lower-case name of the level.
func (l Level) String() string {
	switch l {
	case LevelUnknown:
		return "unknown"
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	case LevelFatal:
		return "fatal"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel reads a level name case-insensitively ("ERROR", "err",
// "warning", "crit", ...). It returns LevelUnknown for anything else.
func ParseLevel(s string) Level {
	if len(s) > 11 {
		return LevelUnknown
	}
	switch strings.ToLower(s) {
	case "trace", "debug", "dbg", "verbose":
		return LevelDebug
	case "info", "information", "informational", "notice":
		return LevelInfo
	case "warn", "warning":
		return LevelWarn
	case "error", "err", "eror":
		return LevelError
	case "fatal", "critical", "crit", "panic", "dpanic", "alert", "emerg", "emergency":
		return LevelFatal
	}
	return LevelUnknown
}

// Line is a raw log line split into what the miner uses.
type Line struct {
	// Raw is the line as given, cut to the maximum line length.
	Raw string
	// Level is the extracted severity.
	Level Level
	// Content is the part that is mined: the message of a logfmt or JSON
	// line followed by its extra keys, or the whole line otherwise. It is
	// not yet masked.
	Content string
}

// DefaultMaxLineBytes is the line length Options.MaxLineBytes defaults to.
const DefaultMaxLineBytes = 2048

// defaultExtraKeys are the structured keys whose values are appended to
// the message, because errors differ in them rather than in the message.
var defaultExtraKeys = []string{"err", "error"}

// ParseLine extracts the level and the content of one raw line, cut to
// maxBytes (DefaultMaxLineBytes when maxBytes <= 0) on a UTF-8 boundary
// when there is one. extraKeys names the logfmt or JSON keys whose values
// are appended to the message as `key=value` (nil means "err", "error").
// Content is never longer than Raw.
func ParseLine(raw string, maxBytes int, extraKeys []string) Line {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxLineBytes
	}
	if extraKeys == nil {
		extraKeys = defaultExtraKeys
	}
	raw = truncate(strings.TrimRight(raw, "\r\n"), maxBytes)
	ln := Line{Raw: raw}
	trimmed := strings.TrimSpace(raw)
	if strings.HasPrefix(trimmed, "{") && parseJSON(&ln, trimmed, extraKeys) {
		return ln
	}
	if parseLogfmt(&ln, raw, extraKeys) {
		return ln
	}
	ln.Level = plainLevel(raw)
	ln.Content = raw
	return ln
}

// truncate cuts s to at most n bytes, backing up to a rune start (at most
// three bytes) so that a valid line stays valid.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for back := 0; back < 3 && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	if cut == 0 || !utf8.RuneStart(s[cut]) {
		cut = n
	}
	return s[:cut]
}

func isLevelKey(k string) bool {
	switch strings.ToLower(k) {
	case "level", "lvl", "severity", "loglevel", "log.level", "levelname":
		return true
	}
	return false
}

func isMsgKey(k string) bool {
	switch strings.ToLower(k) {
	case "msg", "message":
		return true
	}
	return false
}

func isTimeKey(k string) bool {
	switch strings.ToLower(k) {
	case "time", "ts", "timestamp", "t", "@timestamp":
		return true
	}
	return false
}

// parseJSON fills ln from a one-object JSON line. Only string values and
// raw JSON substrings go into the content, so it stays shorter than the line.
func parseJSON(ln *Line, s string, extraKeys []string) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &obj); err != nil {
		return false
	}
	// text decodes a JSON string; other values stay raw JSON. Invalid
	// UTF-8 stays as written: decoding would turn each bad byte into a
	// three-byte U+FFFD and make the content longer than the line.
	text := func(v json.RawMessage) string {
		var str string
		if len(v) >= 2 && v[0] == '"' && !utf8.Valid(v) {
			return string(v[1 : len(v)-1])
		}
		if json.Unmarshal(v, &str) == nil {
			return str
		}
		return string(v)
	}
	var msg string
	hasMsg := false
	// Map order is random; visit keys in a fixed order of preference.
	for _, k := range []string{"level", "lvl", "severity", "log.level", "levelname", "loglevel"} {
		v, ok := obj[k]
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(string(v)); err == nil {
			ln.Level = bunyanLevel(n)
		} else {
			ln.Level = ParseLevel(text(v))
		}
		break
	}
	for _, k := range []string{"msg", "message"} {
		if v, ok := obj[k]; ok {
			msg, hasMsg = text(v), true
			break
		}
	}
	if !hasMsg {
		ln.Content = s
		return true
	}
	var b strings.Builder
	b.WriteString(msg)
	for _, k := range extraKeys {
		if v, ok := obj[k]; ok {
			b.WriteByte(' ')
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(text(v))
		}
	}
	ln.Content = b.String()
	return true
}

// bunyanLevel maps the numeric levels of bunyan and pino.
func bunyanLevel(n int) Level {
	switch {
	case n >= 60:
		return LevelFatal
	case n >= 50:
		return LevelError
	case n >= 40:
		return LevelWarn
	case n >= 30:
		return LevelInfo
	case n >= 10:
		return LevelDebug
	}
	return LevelUnknown
}

type kv struct {
	key, value string
	hasValue   bool
}

// splitLogfmt splits s into logfmt pairs. It fails on an unterminated
// quote or a pair that is not `key`, `key=value` or `key="quoted value"`.
func splitLogfmt(s string, pairs []kv) ([]kv, bool) {
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return pairs, true
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' && s[i] != '"' {
			i++
		}
		if i == start || (i < len(s) && s[i] == '"') {
			return pairs, false
		}
		p := kv{key: s[start:i]}
		if i < len(s) && s[i] == '=' {
			i++
			p.hasValue = true
			if i < len(s) && s[i] == '"' {
				i++
				var b []byte
				closed := false
				vs := i
				for i < len(s) {
					c := s[i]
					if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
						if b == nil {
							b = append([]byte(nil), s[vs:i]...)
						}
						b = append(b, s[i+1])
						i += 2
						continue
					}
					if c == '"' {
						closed = true
						break
					}
					if b != nil {
						b = append(b, c)
					}
					i++
				}
				if !closed {
					return pairs, false
				}
				if b != nil {
					p.value = string(b)
				} else {
					p.value = s[vs:i]
				}
				i++ // closing quote
				if i < len(s) && s[i] != ' ' && s[i] != '\t' {
					return pairs, false
				}
			} else {
				vs := i
				for i < len(s) && s[i] != ' ' && s[i] != '\t' {
					i++
				}
				p.value = s[vs:i]
			}
		}
		pairs = append(pairs, p)
	}
}

// parseLogfmt fills ln from a logfmt line that has a level or message key.
func parseLogfmt(ln *Line, s string, extraKeys []string) bool {
	var buf [16]kv
	pairs, ok := splitLogfmt(s, buf[:0])
	if !ok {
		return false
	}
	msgAt, levelAt := -1, -1
	for i, p := range pairs {
		if !p.hasValue {
			continue
		}
		if msgAt < 0 && isMsgKey(p.key) {
			msgAt = i
		} else if levelAt < 0 && isLevelKey(p.key) {
			levelAt = i
		}
	}
	if msgAt < 0 && levelAt < 0 {
		return false
	}
	if levelAt >= 0 {
		ln.Level = ParseLevel(pairs[levelAt].value)
	}
	var b strings.Builder
	if msgAt >= 0 {
		b.WriteString(pairs[msgAt].value)
		for _, k := range extraKeys {
			for _, p := range pairs {
				if p.hasValue && p.key == k {
					b.WriteByte(' ')
					b.WriteString(k)
					b.WriteByte('=')
					b.WriteString(p.value)
					break
				}
			}
		}
	} else {
		// No message: every pair but the time and the level.
		for i, p := range pairs {
			if i == levelAt || (p.hasValue && isTimeKey(p.key)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p.key)
			if p.hasValue {
				b.WriteByte('=')
				b.WriteString(p.value)
			}
		}
	}
	ln.Content = b.String()
	return true
}

// plainLevel looks for a level in the first few tokens of a plain line:
// an upper-case word (ERROR, WARN:), a bracketed word of any case
// ([error], <warn>), a klog header (E1127), or a level=... pair anywhere
// in the line.
func plainLevel(s string) Level {
	tok := 0
	for rest := s; rest != ""; {
		rest = strings.TrimLeft(rest, " \t")
		end := strings.IndexAny(rest, " \t")
		var t string
		if end < 0 {
			t, rest = rest, ""
		} else {
			t, rest = rest[:end], rest[end:]
		}
		if t == "" {
			break
		}
		if k, v, ok := strings.Cut(t, "="); ok && isLevelKey(k) {
			if l := ParseLevel(strings.Trim(v, `"'`)); l != LevelUnknown {
				return l
			}
		}
		if tok == 0 {
			if l := klogLevel(t); l != LevelUnknown {
				return l
			}
		}
		if tok < 6 {
			if l := bareLevel(t); l != LevelUnknown {
				return l
			}
		}
		tok++
	}
	return LevelUnknown
}

// klogLevel reads the glog/klog header letter of I1127, W1127, E1127, F1127.
func klogLevel(t string) Level {
	if len(t) != 5 || digits(t[1:]) != 4 {
		return LevelUnknown
	}
	switch t[0] {
	case 'I':
		return LevelInfo
	case 'W':
		return LevelWarn
	case 'E':
		return LevelError
	case 'F':
		return LevelFatal
	}
	return LevelUnknown
}

func bareLevel(t string) Level {
	t = strings.TrimRight(t, ":,")
	if len(t) >= 3 {
		if (t[0] == '[' && t[len(t)-1] == ']') || (t[0] == '<' && t[len(t)-1] == '>') || (t[0] == '(' && t[len(t)-1] == ')') {
			return ParseLevel(t[1 : len(t)-1])
		}
	}
	if t != strings.ToUpper(t) || len(t) < 3 {
		return LevelUnknown
	}
	return ParseLevel(t)
}
