package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzVerifyExport feeds arbitrary bytes to VerifyExport: it must never
// panic, and memory stays bounded by the line limit whatever the input.
func FuzzVerifyExport(f *testing.F) {
	s := testSigner(1)
	log := buildLog(4)
	good := rawExport(f, s, []Checkpoint{cp(s, log, 2), cp(s, log, 4)}, log)
	f.Add(good)
	f.Add(rawExport(f, s, []Checkpoint{cp(s, log, 4)}, log[:2]))
	f.Add(rawExport(f, s, nil, log))
	f.Add(bytes.Replace(good, []byte(`"actor":"alice"`), []byte(`"actor":"mallory"`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":3`), []byte(`"seq":-3`), 1))
	f.Add(bytes.Replace(good, []byte(`"seq":3`), []byte(`"seq":99999999999999999999`), 1))
	f.Add([]byte(`{"header":{"format":"airlock-audit-export/v1"}}` + "\n" + `{"entry":{"seq":1}}`))
	f.Add([]byte{})
	pub := s.PublicKey()
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := VerifyExport(bytes.NewReader(data), pub)
		if err != nil {
			return
		}
		if r.OK() {
			// Only a chain that the key vouches for can verify: the fuzzer
			// cannot forge a signature, so it must have kept a checkpoint.
			if r.LastCheckpoint == nil {
				t.Fatalf("export verified with no checkpoint met: %s", r)
			}
			if !VerifyCheckpoint(pub, *r.LastCheckpoint) {
				t.Fatalf("report rests on an unsigned checkpoint")
			}
		} else if r.Broken.Seq < 0 || r.Broken.Seq > r.Entries+1 {
			t.Fatalf("broken at %d after %d verified entries", r.Broken.Seq, r.Entries)
		}
		_ = r.String()
	})
}

// FuzzParseEntryLine checks the fast entry parser against encoding/json:
// whatever it accepts must decode to the very same entry there.
func FuzzParseEntryLine(f *testing.F) {
	log := buildLog(3)
	for i := range log {
		b, _ := json.Marshal(Line{Entry: &log[i]})
		f.Add(b)
	}
	b, _ := json.Marshal(Line{Entry: &Entry{Seq: -1, Revision: 0, Reason: "x", Hash: ""}})
	f.Add(b)
	f.Add([]byte(`{"entry":{"seq":01,"time":"2026-01-01T00:00:00+01:00","actor":"","action":"","kind":"","name":"","revision":0,"stateHash":"","prevHash":"","hash":""}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fast Entry
		if !parseEntryLine(raw, &fast) {
			return
		}
		var l Line
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil || l.Entry == nil || l.Header != nil || l.Checkpoint != nil {
			t.Fatalf("fast path accepted %q; encoding/json says %v", raw, err)
		}
		if !reflect.DeepEqual(fast, *l.Entry) {
			t.Fatalf("fast path decoded %q as\n%+v\nencoding/json as\n%+v", raw, fast, *l.Entry)
		}
		// And ExportWriter writes it back as a line that decodes to the
		// same entry, with the same hash.
		out, err := appendEntryJSON([]byte(`{"entry":`), &fast)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := parseLine(append(out, '}'))
		if err != nil || l2.Entry == nil {
			t.Fatalf("re-encoded %q as %q, which does not parse: %v", raw, out, err)
		}
		again := *l2.Entry
		if again.ComputeHash() != fast.ComputeHash() || again.Hash != fast.Hash || !again.Time.Equal(fast.Time) {
			t.Fatalf("re-encoded %q as %q, which decodes differently", raw, out)
		}
	})
}
