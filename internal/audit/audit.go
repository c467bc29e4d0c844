// Package audit defines airlock's tamper-evident audit log: hash-chained
// entries, signed checkpoints over the chain, the canonical hash of an
// object's state, and verification of a log online or from an export.
//
// Entries are appended by the store inside the transaction of the mutation
// they record; this package holds only the pure parts.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// GenesisHash is the PrevHash of the first entry.
var GenesisHash = "sha256:" + hex.EncodeToString(make([]byte, sha256.Size))

// Entry is one audit record. Hash covers every other field, and PrevHash
// links it to the entry before, so changing, removing or reordering any
// entry breaks the chain from that point on.
type Entry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Revision  int64     `json:"revision"`
	Reason    string    `json:"reason,omitempty"`
	StateHash string    `json:"stateHash"`
	PrevHash  string    `json:"prevHash"`
	Hash      string    `json:"hash"`
}

// ComputeHash returns the hash the entry must carry. Fields are written
// length-prefixed in a fixed order, so no two different entries share an
// encoding. Time is taken at nanosecond precision in UTC.
func (e *Entry) ComputeHash() string {
	var buf [512]byte
	b := append(buf[:0], "airlock.audit.v1"...)
	b = binary.AppendVarint(b, e.Seq)
	b = binary.AppendVarint(b, e.Time.UnixNano())
	for _, s := range [...]string{e.Actor, e.Action, e.Kind, e.Name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, e.Revision)
	for _, s := range [...]string{e.Reason, e.StateHash, e.PrevHash} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	return hashString(sum)
}

// hashString renders a digest as "sha256:<hex>" with one allocation.
func hashString(sum [sha256.Size]byte) string {
	var out [len("sha256:") + 2*sha256.Size]byte
	copy(out[:], "sha256:")
	hex.Encode(out[len("sha256:"):], sum[:])
	return string(out[:])
}

// Seal fills in PrevHash and Hash for an entry that follows prev.
func (e *Entry) Seal(prevHash string) {
	e.PrevHash = prevHash
	e.Time = e.Time.UTC()
	e.Hash = e.ComputeHash()
}

// StateHash returns the SHA-256 of the canonical JSON of v: object keys
// sorted, no insignificant white space, numbers as written. It is what an
// entry records of an object's new state, so the state itself (which may
// hold sensitive values) never enters the log. A nil v hashes as "null".
// It is safe for concurrent use.
func StateHash(v any) (string, error) {
	bufs := hashBufs.Get().(*stateBufs)
	defer hashBufs.Put(bufs)
	var raw []byte
	if a, ok := v.(jsonAppender); ok {
		if raw, ok = a.AppendJSON(bufs.raw[:0]); ok {
			keepBuf(&bufs.raw, raw)
		} else {
			raw = nil
		}
	}
	if raw == nil {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return "", fmt.Errorf("canonical json: %w", err)
		}
	}
	c, ok := appendCanonical(bufs.canon[:0], raw)
	if !ok {
		var err error
		if c, err = canonicalSlow(raw); err != nil {
			return "", err
		}
	} else {
		keepBuf(&bufs.canon, c)
	}
	return hashString(sha256.Sum256(c)), nil
}

// jsonAppender is a value that writes its own JSON, as encoding/json would
// (resource.Object does), or reports that it cannot.
type jsonAppender interface {
	AppendJSON([]byte) ([]byte, bool)
}

// stateBufs are StateHash's scratch buffers: the object's JSON and its
// canonical form (apart, since one is read while the other is written).
type stateBufs struct{ raw, canon []byte }

// keepBuf makes grown the buffer *dst reuses, unless it grew past 64 KiB.
func keepBuf(dst *[]byte, grown []byte) {
	if cap(grown) <= 64<<10 {
		*dst = grown[:0]
	}
}

var hashBufs = sync.Pool{New: func() any {
	return &stateBufs{raw: make([]byte, 0, 1024), canon: make([]byte, 0, 1024)}
}}

// Canonical returns v as canonical JSON: v as encoding/json marshals it,
// with every object's keys sorted byte-wise (a repeated key keeps its last
// value), no insignificant white space, strings re-escaped as encoding/json
// does without HTML escaping, and numbers as written.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if c, ok := appendCanonical(make([]byte, 0, len(raw)), raw); ok {
		return c, nil
	}
	return canonicalSlow(raw)
}

// canonicalSlow canonicalises raw by decoding it and encoding it again. It
// defines the canonical form; appendCanonical is a faster way to the same
// bytes that gives up on what it does not handle.
func canonicalSlow(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil { // maps encode with sorted keys
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// maxCanonDepth is the nesting appendCanonical handles before leaving the
// value to canonicalSlow.
const maxCanonDepth = 256

// appendCanonical appends the canonical form of raw, the output of
// json.Marshal, to dst without decoding it into Go values. It reports false
// when raw is anything other than one compact JSON value it knows how to
// handle; the caller then falls back to canonicalSlow.
func appendCanonical(dst, raw []byte) ([]byte, bool) {
	c := canonicaliser{src: raw}
	dst, ok := c.value(dst, 0)
	return dst, ok && c.pos == len(raw)
}

type canonicaliser struct {
	src []byte
	pos int
	tmp []byte // scratch for reordering object members
}

// member is one "key":value of an object, as a span of the output.
type member struct {
	key        []byte // decoded key, what members sort by
	start, end int
}

func (c *canonicaliser) value(dst []byte, depth int) ([]byte, bool) {
	if c.pos >= len(c.src) || depth > maxCanonDepth {
		return dst, false
	}
	switch b := c.src[c.pos]; {
	case b == '{':
		return c.object(dst, depth)
	case b == '[':
		c.pos++
		dst = append(dst, '[')
		if c.pos < len(c.src) && c.src[c.pos] == ']' {
			c.pos++
			return append(dst, ']'), true
		}
		for {
			var ok bool
			if dst, ok = c.value(dst, depth+1); !ok || c.pos >= len(c.src) {
				return dst, false
			}
			switch c.src[c.pos] {
			case ',':
				c.pos++
				dst = append(dst, ',')
			case ']':
				c.pos++
				return append(dst, ']'), true
			default:
				return dst, false
			}
		}
	case b == '"':
		s, dec, plain, ok := c.str()
		if !ok {
			return dst, false
		}
		if plain {
			return append(dst, s...), true
		}
		return appendCanonString(dst, dec), true
	case b == '-' || (b >= '0' && b <= '9'):
		start := c.pos
		for c.pos < len(c.src) && isNumberByte(c.src[c.pos]) {
			c.pos++
		}
		return append(dst, c.src[start:c.pos]...), true
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(c.src[c.pos:], []byte(lit)) {
				c.pos += len(lit)
				return append(dst, lit...), true
			}
		}
		return dst, false
	}
}

func isNumberByte(b byte) bool {
	return b >= '0' && b <= '9' || b == '-' || b == '+' || b == '.' || b == 'e' || b == 'E'
}

// object writes the members in the order they come, then, unless they were
// already in order without repeats, sorts them in place.
func (c *canonicaliser) object(dst []byte, depth int) ([]byte, bool) {
	c.pos++ // '{'
	objStart := len(dst)
	dst = append(dst, '{')
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		return append(dst, '}'), true
	}
	var arr [16]member
	members := arr[:0]
	sorted := true
	for {
		raw, dec, plain, ok := c.str()
		if !ok || c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return dst, false
		}
		c.pos++
		key := raw[1 : len(raw)-1]
		if !plain {
			key = []byte(dec)
		}
		if n := len(members); n > 0 && bytes.Compare(members[n-1].key, key) >= 0 {
			sorted = false
		}
		if len(members) > 0 {
			dst = append(dst, ',')
		}
		m := member{key: key, start: len(dst)}
		if plain {
			dst = append(dst, raw...)
		} else {
			dst = appendCanonString(dst, dec)
		}
		dst = append(dst, ':')
		if dst, ok = c.value(dst, depth+1); !ok || c.pos >= len(c.src) {
			return dst, false
		}
		m.end = len(dst)
		members = append(members, m)
		switch c.src[c.pos] {
		case ',':
			c.pos++
			continue
		case '}':
			c.pos++
		default:
			return dst, false
		}
		break
	}
	if sorted {
		return append(dst, '}'), true
	}
	// Sort stably by key, keep the last of each run of equal keys (as a
	// decoder filling a map would), and write the members back.
	slices.SortStableFunc(members, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	c.tmp = append(c.tmp[:0], dst[objStart:]...)
	dst = dst[:objStart+1]
	first := true
	for i, m := range members {
		if i+1 < len(members) && bytes.Equal(m.key, members[i+1].key) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, c.tmp[m.start-objStart:m.end-objStart]...)
	}
	return append(dst, '}'), true
}

// str reads the string token at c.pos. plain reports that its text is
// already what appendCanonString would write for its value; otherwise dec
// holds the decoded value to be escaped again.
func (c *canonicaliser) str() (raw []byte, dec string, plain, ok bool) {
	if c.pos >= len(c.src) || c.src[c.pos] != '"' {
		return nil, "", false, false
	}
	start := c.pos
	i := c.pos + 1
	plain = true
	for i < len(c.src) {
		b := c.src[i]
		if b == '"' {
			break
		}
		if b == '\\' {
			plain = false
			i += 2
			continue
		}
		if b < 0x20 {
			return nil, "", false, false
		}
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(c.src[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				plain = false
			}
			i += size
			continue
		}
		i++
	}
	if i >= len(c.src) {
		return nil, "", false, false
	}
	c.pos = i + 1
	raw = c.src[start:c.pos]
	if plain {
		return raw, "", true, true
	}
	if err := json.Unmarshal(raw, &dec); err != nil {
		return nil, "", false, false
	}
	return raw, dec, false, true
}

// appendCanonString appends s as a JSON string the way encoding/json does
// without HTML escaping.
func appendCanonString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
