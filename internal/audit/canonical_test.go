package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// oldCanonical is Canonical as it was before the streaming canonicaliser,
// kept verbatim: every entry in existing audit logs was hashed with it, so
// the new one must give the same bytes for every input.
func oldCanonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// checkSame fails t unless Canonical and StateHash agree with the old
// implementation on v: the same bytes, or both an error.
func checkSame(t *testing.T, v any) {
	t.Helper()
	want, werr := oldCanonical(v)
	got, gerr := Canonical(v)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("Canonical(%#v): error %v, old implementation %v", v, gerr, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Canonical(%#v)\n got %q\nwant %q", v, got, want)
	}
	h, herr := StateHash(v)
	if (herr != nil) != (werr != nil) {
		t.Fatalf("StateHash(%#v): error %v, old implementation %v", v, herr, werr)
	}
	if werr == nil && h != "sha256:"+hexSHA256(want) {
		t.Fatalf("StateHash(%#v) = %s, want the hash of %q", v, h, want)
	}
}

func hexSHA256(b []byte) string {
	return strings.TrimPrefix(hashString(sha256Sum(b)), "sha256:")
}

// genJSON writes a random JSON value to b: nested objects and arrays with
// repeated and unsorted keys, strings with escapes, non-ASCII, U+2028,
// invalid UTF-8, control characters and HTML characters, and numbers in
// every form JSON allows, with random white space.
func genJSON(r *rand.Rand, b *bytes.Buffer, depth int) {
	ws := func() {
		if r.IntN(6) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "  \r\n"}[r.IntN(4)])
		}
	}
	ws()
	k := r.IntN(8)
	if depth > 4 {
		k = 2 + r.IntN(6)
	}
	switch k {
	case 0:
		b.WriteByte('{')
		n := r.IntN(6)
		keys := []string{}
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			var key string
			if len(keys) > 0 && r.IntN(5) == 0 {
				key = keys[r.IntN(len(keys))] // repeated key
			} else {
				key = genString(r)
				keys = append(keys, key)
			}
			ws()
			b.WriteString(key)
			ws()
			b.WriteByte(':')
			genJSON(r, b, depth+1)
		}
		ws()
		b.WriteByte('}')
	case 1:
		b.WriteByte('[')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			genJSON(r, b, depth+1)
		}
		ws()
		b.WriteByte(']')
	case 2, 3:
		b.WriteString(genString(r))
	case 4, 5:
		b.WriteString([]string{"0", "-0", "1", "-12", "3.25", "1e3", "1E+30", "-2.5e-7", "123456789012345678901234567890", "0.000", "6.02214076e23"}[r.IntN(11)])
	default:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	}
	ws()
}

// genString returns a quoted JSON string token, as text.
func genString(r *rand.Rand) string {
	pieces := []string{
		"a", "b", "app", "Z", "name", "0", "é", "日本", "😀", " ", "\u2028", "\u2029", "<", ">", "&", "\u007f",
		`\"`, `\\`, `\/`, `\n`, `\t`, `\r`, `\b`, `\f`, `\u0000`, `\u001f`, `\u00e9`, `\u2028`, `\u003c`, `\ud83d\ude00`, `\ud800`, `\uDFFF`, `\uffff`,
		"\xff", "\xc3", "\xed\xa0\x80", "\xef\xbf\xbd",
	}
	var s strings.Builder
	s.WriteByte('"')
	for range r.IntN(5) {
		s.WriteString(pieces[r.IntN(len(pieces))])
	}
	s.WriteByte('"')
	return s.String()
}

func TestCanonicalMatchesOldRandomJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for range 50000 {
		b.Reset()
		genJSON(r, &b, 0)
		raw := bytes.Clone(b.Bytes())
		checkSame(t, json.RawMessage(raw))
		// The same value decoded into Go maps and slices.
		var v any
		if err := json.Unmarshal(raw, &v); err == nil {
			checkSame(t, v)
		}
	}
}

func TestCanonicalMatchesOldObjects(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	raw := func() json.RawMessage {
		if r.IntN(4) == 0 {
			return nil
		}
		b.Reset()
		genJSON(r, &b, 0)
		return bytes.Clone(b.Bytes())
	}
	for range 20000 {
		o := &resource.Object{
			APIVersion: []string{resource.APIVersion, "", "v1<x>"}[r.IntN(3)],
			Kind:       []string{"Release", "Application", "Kind-with.odd_chars", "Ré<lease>", ""}[r.IntN(5)],
			Metadata: resource.Metadata{
				Name:     []string{fmt.Sprintf("shop-%d", r.IntN(1000)), "tab\there", "bad\xff", "q\"uote"}[r.IntN(4)],
				Revision: r.Int64N(3) * r.Int64(),
			},
			Spec:   raw(),
			Status: raw(),
		}
		if r.IntN(3) > 0 {
			o.Metadata.Labels = map[string]string{}
			for range r.IntN(5) {
				o.Metadata.Labels[[]string{"app", "team", "example.com/tier", "a<b", "z", "nl\n"}[r.IntN(6)]] = []string{"shop", "", "payments", "x&y", "\u2028", "\xfe"}[r.IntN(6)]
			}
		}
		if r.IntN(4) > 0 {
			o.Metadata.CreatedAt = time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
			o.Metadata.UpdatedAt = o.Metadata.CreatedAt.Add(time.Duration(r.Int64N(1e12)))
			if r.IntN(3) == 0 { // offsets, and a zone with seconds in its offset
				zones := []*time.Location{time.FixedZone("CET", 3600), time.FixedZone("X", -(9*3600 + 30*60)), time.FixedZone("LMT", 3600+25)}
				o.Metadata.UpdatedAt = o.Metadata.UpdatedAt.In(zones[r.IntN(len(zones))])
			}
		}
		checkSame(t, o)
	}
}

// TestObjectsSkipReflection checks that the objects the store hashes are
// written by resource.Object.AppendJSON, not by encoding/json, and those
// it cannot write exactly are left to encoding/json.
func TestObjectsSkipReflection(t *testing.T) {
	o := &resource.Object{
		APIVersion: resource.APIVersion, Kind: "Release",
		Metadata: resource.Metadata{Name: "shop-1", Labels: map[string]string{"app": "shop", "example.com/tier": "web"}, Revision: 7,
			CreatedAt: time.Unix(1700000000, 5).UTC(), UpdatedAt: time.Unix(1700000001, 0).In(time.FixedZone("CET", 3600))},
		Spec:   json.RawMessage(`{"application":"shop","version":"1.4.2"}`),
		Status: json.RawMessage(`{"phase":"Ready"}`),
	}
	raw, ok := o.AppendJSON(nil)
	if !ok {
		t.Fatalf("AppendJSON refused a plain object")
	}
	var got, want any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("AppendJSON wrote %s: %v", raw, err)
	}
	enc, _ := json.Marshal(o)
	_ = json.Unmarshal(enc, &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("AppendJSON wrote\n%s\nencoding/json writes\n%s", raw, enc)
	}
	for _, bad := range []*resource.Object{
		nil,
		{Kind: "Ré"},
		{Kind: "a<b"},
		{Metadata: resource.Metadata{Labels: map[string]string{"k": "tab\t"}}},
		{Metadata: resource.Metadata{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{Spec: json.RawMessage(`{"a":`)},
	} {
		if raw, ok := bad.AppendJSON([]byte("x")); ok || string(raw) != "x" {
			t.Errorf("AppendJSON(%+v) = %q, %v; want it to refuse and append nothing", bad, raw, ok)
		}
	}
	if raceEnabled {
		return
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { _, _ = o.AppendJSON(buf[:0]) }); n > 0 {
		t.Errorf("AppendJSON into a buffer with room allocates %v times; want none", n)
	}
}

// TestCanonicalFastPath checks that the values the store hashes take the
// fast path rather than falling back to decoding.
func TestCanonicalFastPath(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"apiVersion":"airlock.dev/v1","kind":"Release","metadata":{"name":"a","labels":{"z":"1","app":"shop"},"revision":3,"createdAt":"2024-01-01T00:00:00Z"},"spec":{"b":[1,2.5,"x"],"a":{"c":null,"b":true}}}`,
		`{"s":"<html> & \u003c \u2028 \"q\" é"}`,
		`{"b":1,"a":2,"b":3}`,
	} {
		if _, ok := appendCanonical(nil, []byte(raw)); !ok {
			t.Errorf("appendCanonical(%s) fell back to decoding", raw)
		}
	}
}

func TestCanonicalMatchesOldEdgeCases(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300) // past maxCanonDepth
	for _, v := range []any{
		nil, 1, "x", true, []int(nil), map[string]int{}, struct{}{},
		json.RawMessage(`{}`), json.RawMessage(`[]`), json.RawMessage(`""`),
		json.RawMessage(`{"b":1,"a":2,"b":3}`), json.RawMessage(`{"a":{"d":1,"c":2},"a":[]}`),
		json.RawMessage(`{"\u0061":1,"a":2}`), json.RawMessage(`{"é":1,"z":2,"\u00e9":3}`),
		json.RawMessage(deep), json.RawMessage(`{"x":` + deep + `}`),
		json.RawMessage(`1 2`), json.RawMessage(`{"a":}`), json.RawMessage(`"\x01"`), json.RawMessage(`tru`),
		json.RawMessage("\"\xff\""), json.RawMessage(`1.5e+300`), json.RawMessage(`-0.0`),
		map[string]any{"html": "<a href=\"x\">&</a>", "nl": "a\nb", "ls": "\u2028", "bad": "\xff"},
		&resource.Object{Kind: "Release", Metadata: resource.Metadata{Name: "x", CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		&resource.Object{Kind: "Release", Spec: json.RawMessage(`null`), Status: json.RawMessage(` {"b" : 1 , "a" : 2} `)},
		func() {}, make(chan int),
	} {
		checkSame(t, v)
	}
}

// FuzzCanonical checks the canonicaliser against the old implementation on
// arbitrary bytes given as a json.RawMessage.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"\u2028"]}`, `{"a":1,"a":2}`, `"\ud800"`, `[1e5,-0,{"":{}}]`, "\"\xff<\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSame(t, json.RawMessage(b))
	})
}

func BenchmarkStateHash(b *testing.B) {
	o := &resource.Object{
		APIVersion: resource.APIVersion,
		Kind:       "Release",
		Metadata: resource.Metadata{
			Name: "shop-1", Labels: map[string]string{"app": "shop"}, Revision: 42,
			CreatedAt: time.Unix(1700000000, 123456789).UTC(), UpdatedAt: time.Unix(1700000000, 123456789).UTC(),
		},
		Spec: json.RawMessage(`{"application":"shop","version":"1.4.2","digest":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`),
	}
	b.Run("old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := oldCanonical(o)
			if err != nil {
				b.Fatal(err)
			}
			sum := sha256Sum(c)
			_ = "sha256:" + hex.EncodeToString(sum[:])
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := StateHash(o); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
