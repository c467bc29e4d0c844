package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"
)

// buildLog returns a sealed chain of n entries.
func buildLog(n int) []Entry {
	out := make([]Entry, n)
	prev := GenesisHash
	for i := range out {
		e := &out[i]
		*e = Entry{
			Seq: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), Actor: "alice",
			Action: "update", Kind: "Environment", Name: fmt.Sprintf("env-%d", i%7),
			Revision: int64(i + 1), StateHash: fmt.Sprintf("sha256:%064x", i),
		}
		if i%3 == 0 {
			e.Reason = "scheduled change"
		}
		e.Seal(prev)
		prev = e.Hash
	}
	return out
}

// rawExport writes an export line by line with encoding/json and no checks,
// so tests can build exports that ExportWriter would refuse.
func rawExport(t testing.TB, s *Signer, cps []Checkpoint, entries []Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	lines := []Line{{Header: &Header{Format: ExportFormat, KeyID: KeyID(s.PublicKey()), PublicKey: string(EncodePublicKey(s.PublicKey())), ExportedAt: t0}}}
	for i := range cps {
		lines = append(lines, Line{Checkpoint: &cps[i]})
	}
	for i := range entries {
		lines = append(lines, Line{Entry: &entries[i]})
	}
	for _, l := range lines {
		j, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(j, '\n'))
	}
	return b.Bytes()
}

func cp(s *Signer, log []Entry, size int) Checkpoint {
	head := GenesisHash
	if size > 0 {
		head = log[size-1].Hash
	}
	return s.Sign(int64(size), head, t0.Add(time.Hour))
}

func TestVerifierIntact(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	log := buildLog(10)
	tests := []struct {
		name string
		cps  []Checkpoint
		want string
	}{
		{"no checkpoint", nil, "ok: 10 entries, chain intact, no signed checkpoint yet"},
		{"checkpoint at head", []Checkpoint{cp(s, log, 4), cp(s, log, 10)}, "ok: 10 entries, chain intact, last checkpoint signed"},
		{"entries since", []Checkpoint{cp(s, log, 7), cp(s, log, 3)}, "ok: 10 entries, chain intact, last checkpoint signed (covers 7; 3 entries since)"},
		{"empty-log checkpoint", []Checkpoint{cp(s, log, 0)}, "ok: 10 entries, chain intact, last checkpoint signed (covers 0; 10 entries since)"},
		{"same checkpoint twice", []Checkpoint{cp(s, log, 10), cp(s, log, 10)}, "ok: 10 entries, chain intact, last checkpoint signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := NewVerifier(s.PublicKey(), tt.cps)
			for i := range log {
				if !v.Add(&log[i]) {
					t.Fatalf("Add(entry %d) = false", i+1)
				}
			}
			r := v.Finish()
			if !r.OK() || r.String() != tt.want {
				t.Fatalf("report %q; want %q", r, tt.want)
			}
			if r.Entries != 10 || r.Head != log[9].Hash {
				t.Errorf("Entries, Head = %d, %s", r.Entries, r.Head)
			}
		})
	}
}

// tamperCase changes a valid log; every case must be found, naming the first
// entry that cannot be trusted.
type tamperCase struct {
	name    string
	cps     func(s *Signer, log []Entry) []Checkpoint // default: one at size 10
	tamper  func(log []Entry) []Entry
	wantSeq int64
	want    string // in the reason
}

func tamperCases() []tamperCase {
	field := func(change func(e *Entry)) func([]Entry) []Entry {
		return func(log []Entry) []Entry { change(&log[4]); return log }
	}
	return []tamperCase{
		{name: "seq changed", tamper: field(func(e *Entry) { e.Seq = 50 }), wantSeq: 5, want: "entry 5 is missing"},
		{name: "time changed", tamper: field(func(e *Entry) { e.Time = e.Time.Add(time.Millisecond) }), wantSeq: 5, want: "was modified"},
		{name: "actor changed", tamper: field(func(e *Entry) { e.Actor = "mallory" }), wantSeq: 5, want: "was modified"},
		{name: "action changed", tamper: field(func(e *Entry) { e.Action = "create" }), wantSeq: 5, want: "was modified"},
		{name: "kind changed", tamper: field(func(e *Entry) { e.Kind = "Token" }), wantSeq: 5, want: "was modified"},
		{name: "name changed", tamper: field(func(e *Entry) { e.Name = "other" }), wantSeq: 5, want: "was modified"},
		{name: "revision changed", tamper: field(func(e *Entry) { e.Revision = 99 }), wantSeq: 5, want: "was modified"},
		{name: "reason added", tamper: field(func(e *Entry) { e.Reason = "approved" }), wantSeq: 5, want: "was modified"},
		{name: "stateHash changed", tamper: field(func(e *Entry) { e.StateHash = "sha256:00" }), wantSeq: 5, want: "was modified"},
		{name: "prevHash changed", tamper: field(func(e *Entry) { e.PrevHash = GenesisHash }), wantSeq: 5, want: "was modified"},
		{name: "hash changed", tamper: field(func(e *Entry) { e.Hash = GenesisHash }), wantSeq: 5, want: "was modified"},
		{name: "changed and rehashed", tamper: field(func(e *Entry) { e.Actor = "mallory"; e.Hash = e.ComputeHash() }), wantSeq: 5, want: "entry 6 does not link to it"},
		{name: "changed and rehashed after a checkpoint",
			cps: func(s *Signer, log []Entry) []Checkpoint { return []Checkpoint{cp(s, log, 4), cp(s, log, 10)} },
			tamper: func(log []Entry) []Entry {
				log[4].PrevHash = "sha256:x"
				log[4].Hash = log[4].ComputeHash()
				return log
			},
			wantSeq: 5, want: "does not link to entry 4"},
		{name: "first entry rehashed with another prevHash",
			tamper: func(log []Entry) []Entry {
				log[0].PrevHash = "sha256:x"
				log[0].Hash = log[0].ComputeHash()
				return log
			},
			wantSeq: 1, want: "does not link to entry 0"},
		{name: "deleted from the middle", tamper: func(log []Entry) []Entry { return append(log[:4:4], log[5:]...) }, wantSeq: 5, want: "entry 5 is missing (entry 6 comes next)"},
		{name: "first entry deleted", tamper: func(log []Entry) []Entry { return log[1:] }, wantSeq: 1, want: "entry 1 is missing"},
		{name: "two swapped", tamper: func(log []Entry) []Entry { log[4], log[5] = log[5], log[4]; return log }, wantSeq: 5, want: "entry 5 is missing (entry 6 comes next)"},
		{name: "duplicated", tamper: func(log []Entry) []Entry { return append(log[:5:5], log[4:]...) }, wantSeq: 6, want: "entry 5 appears again after entry 5"},
		{name: "truncated before the checkpoint", tamper: func(log []Entry) []Entry { return log[:7] }, wantSeq: 8, want: "the tail was truncated"},
		{name: "all truncated", tamper: func(log []Entry) []Entry { return nil }, wantSeq: 1, want: "the log ends at entry 0"},
		{name: "rewritten from entry 5 on",
			cps: func(s *Signer, log []Entry) []Checkpoint { return []Checkpoint{cp(s, log, 3), cp(s, log, 10)} },
			tamper: func(log []Entry) []Entry {
				// Delete entry 5, renumber and re-seal the rest: a consistent
				// chain that only the checkpoint at 10 can catch.
				log = append(log[:4:4], log[5:]...)
				log = append(log, Entry{Actor: "mallory", Action: "update", Kind: "Token", Name: "x"})
				for i := 4; i < len(log); i++ {
					log[i].Seq, log[i].Revision = int64(i+1), int64(i+1)
					log[i].Seal(log[i-1].Hash)
				}
				return log
			},
			wantSeq: 4, want: "entries 4 to 10 differ from the checkpoint"},
		{name: "forged checkpoint signature",
			cps: func(s *Signer, log []Entry) []Checkpoint {
				c := cp(s, log, 10)
				c.Signature = bytes.Clone(c.Signature)
				c.Signature[7] ^= 0x40
				return []Checkpoint{c}
			},
			tamper: func(log []Entry) []Entry { return log }, wantSeq: 0, want: "forged or altered"},
		{name: "checkpoint moved to a fake head",
			cps: func(s *Signer, log []Entry) []Checkpoint {
				c := cp(s, log, 10)
				c.Head = log[8].Hash
				return []Checkpoint{c}
			},
			tamper: func(log []Entry) []Entry { return log }, wantSeq: 0, want: "forged or altered"},
		{name: "checkpoint by another key",
			cps:    func(_ *Signer, log []Entry) []Checkpoint { return []Checkpoint{cp(testSigner(9), log, 10)} },
			tamper: func(log []Entry) []Entry { return log }, wantSeq: 0, want: "signed by another key"},
		{name: "conflicting checkpoints",
			cps: func(s *Signer, log []Entry) []Checkpoint {
				return []Checkpoint{cp(s, log, 10), s.Sign(10, log[3].Hash, t0)}
			},
			tamper: func(log []Entry) []Entry { return log }, wantSeq: 0, want: "two signed checkpoints at size 10"},
		{name: "checkpoint claims a non-empty empty log",
			cps:    func(s *Signer, log []Entry) []Checkpoint { return []Checkpoint{s.Sign(0, log[0].Hash, t0)} },
			tamper: func(log []Entry) []Entry { return log }, wantSeq: 0, want: "which no log has"},
	}
}

func runTamper(t *testing.T, tc tamperCase) ([]Checkpoint, []Entry, *Signer) {
	s := testSigner(1)
	log := buildLog(10)
	cps := []Checkpoint{cp(s, log, 10)}
	if tc.cps != nil {
		cps = tc.cps(s, log)
	}
	return cps, tc.tamper(log), s
}

func checkBroken(t *testing.T, r Report, wantSeq int64, want string) {
	t.Helper()
	if r.OK() {
		t.Fatalf("tampering not detected: %s", r)
	}
	if r.Broken.Seq != wantSeq || !strings.Contains(r.Broken.Reason, want) {
		t.Fatalf("broken at %d: %q; want entry %d and %q", r.Broken.Seq, r.Broken.Reason, wantSeq, want)
	}
	if wantSeq > 0 && r.Entries != wantSeq-1 {
		t.Errorf("report counts %d entries verified; want %d", r.Entries, wantSeq-1)
	}
}

func TestVerifierTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cps, log, s := runTamper(t, tc)
			v := NewVerifier(s.PublicKey(), cps)
			for i := range log {
				v.Add(&log[i])
			}
			checkBroken(t, v.Finish(), tc.wantSeq, tc.want)
		})
	}
}

func TestVerifyExportTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cps, log, s := runTamper(t, tc)
			r, err := VerifyExport(bytes.NewReader(rawExport(t, s, cps, log)), s.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			checkBroken(t, r, tc.wantSeq, tc.want)
		})
	}
}

func TestVerifierIgnoresEntriesAfterBreak(t *testing.T) {
	t.Parallel()
	log := buildLog(5)
	log[1].Actor = "mallory"
	v := NewVerifier(nil, nil)
	results := []bool{}
	for i := range log {
		results = append(results, v.Add(&log[i]))
	}
	if fmt.Sprint(results) != "[true false false false false]" {
		t.Fatalf("Add results %v", results)
	}
	if r := v.Finish(); r.Broken.Seq != 2 || r.String() != "broken at entry 2: its content does not match its hash: the entry was modified" {
		t.Fatalf("report %q", r)
	}
}

func TestVerifyExportIntact(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	log := buildLog(10)
	tests := []struct {
		name    string
		entries []Entry
		cps     []Checkpoint
		want    string
	}{
		{"covered", log, []Checkpoint{cp(s, log, 5), cp(s, log, 10)}, "ok: 10 entries, chain intact, last checkpoint signed"},
		{"truncated after the last checkpoint", log[:8], []Checkpoint{cp(s, log, 6)}, "ok: 8 entries, chain intact, last checkpoint signed (covers 6; 2 entries since)"},
		{"no entries, empty-log checkpoint", nil, []Checkpoint{cp(s, log, 0)}, "ok: 0 entries, chain intact, last checkpoint signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			h := Header{KeyID: KeyID(s.PublicKey()), ExportedAt: t0}
			if err := WriteExport(&b, h, tt.cps, entrySeq(tt.entries)); err != nil {
				t.Fatal(err)
			}
			r, err := VerifyExport(&b, s.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tt.want || r.Checkpoints != len(tt.cps) {
				t.Fatalf("report %q with %d checkpoints; want %q", r, r.Checkpoints, tt.want)
			}
		})
	}
}

func entrySeq(log []Entry) iter.Seq2[*Entry, error] {
	return func(yield func(*Entry, error) bool) {
		for i := range log {
			if !yield(&log[i], nil) {
				return
			}
		}
	}
}

// TestVerifyExportLines covers exports whose lines are damaged rather than
// whose entries were changed.
func TestVerifyExportLines(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	log := buildLog(10)
	good := rawExport(t, s, []Checkpoint{cp(s, log, 10)}, log)
	lines := strings.SplitAfter(strings.TrimSuffix(string(good), "\n"), "\n")
	// lines[0] header, lines[1] checkpoint, lines[2+i] entry i+1.
	with := func(i int, repl string) string {
		l := append([]string(nil), lines...)
		l[i] = repl
		return strings.Join(l, "")
	}
	entry5, _ := json.Marshal(log[4])
	cpLine, _ := json.Marshal(Line{Checkpoint: &Checkpoint{Size: 10, Head: log[9].Hash}})
	tests := []struct {
		name    string
		in      string
		wantErr string // an error: not an export at all
		wantSeq int64  // else broken at this entry
		want    string
	}{
		{name: "empty", in: "", wantErr: "it is empty"},
		{name: "no header", in: strings.Join(lines[1:], ""), wantErr: "the first line is not its header"},
		{name: "blank first line", in: "\n" + string(good), wantErr: "the first line is not its header"},
		{name: "wrong format", in: with(0, `{"header":{"format":"airlock-audit-export/v9"}}`+"\n"), wantErr: `format "airlock-audit-export/v9"`},
		{name: "not JSON at all", in: "PK\x03\x04binary", wantErr: "the first line is not its header"},
		{name: "no checkpoint", in: lines[0] + strings.Join(lines[2:], ""), wantErr: "holds no signed checkpoint"},
		{name: "header only", in: lines[0], wantErr: "no entries and no signed checkpoint"},
		{name: "over-long header", in: strings.Repeat("x", MaxExportLine+1), wantErr: "token too long"},
		{name: "malformed entry line", in: with(6, "{\"entry\":{\"seq\":5,\n"), wantSeq: 5, want: "export line 7 is malformed"},
		{name: "garbage entry line", in: with(6, "\x00\xff garbage\n"), wantSeq: 5, want: "export line 7 is malformed"},
		{name: "truncated last line", in: strings.TrimSuffix(string(good), "\n")[:len(good)-40], wantSeq: 10, want: "export line 12 is malformed"},
		{name: "entry without envelope", in: with(6, string(entry5)+"\n"), wantSeq: 5, want: `unknown field "seq"`},
		{name: "unknown field", in: with(6, strings.Replace(lines[6], `"seq"`, `"extra":1,"seq"`, 1)), wantSeq: 5, want: `unknown field "extra"`},
		{name: "two kinds in a line", in: with(6, strings.Replace(lines[6], `{"entry"`, `{"header":{},"entry"`, 1)), wantSeq: 5, want: "exactly one of"},
		{name: "text after the object", in: with(6, strings.TrimSuffix(lines[6], "\n")+"}\n"), wantSeq: 5, want: "text after the JSON object"},
		{name: "over-long entry line", in: with(6, `{"entry":{"seq":5,"actor":"`+strings.Repeat("a", MaxExportLine)+"\"}}\n"), wantSeq: 5, want: "longer than 65536 bytes"},
		{name: "second header", in: with(6, lines[0]), wantSeq: 5, want: "second header"},
		{name: "checkpoint among entries", in: with(6, lines[1]), wantSeq: 5, want: "checkpoint among the entries"},
		{name: "malformed checkpoint", in: with(1, `{"checkpoint":{"size":"ten"}}`+"\n"), wantSeq: 0, want: "export line 2 is malformed"},
		{name: "unsigned checkpoint", in: with(1, string(cpLine)+"\n"), wantSeq: 0, want: "export line 2: checkpoint at size 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := VerifyExport(strings.NewReader(tt.in), s.PublicKey())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v (report %q); want an error containing %q", err, r, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() || r.Broken.Seq != tt.wantSeq || !strings.Contains(r.Broken.Reason, tt.want) {
				t.Fatalf("report %q (seq %v); want broken at %d with %q", r, r.Broken, tt.wantSeq, tt.want)
			}
		})
	}
}

func TestVerifyExportReadError(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	log := buildLog(3)
	r := &failingReader{data: rawExport(t, s, []Checkpoint{cp(s, log, 3)}, log), err: errors.New("connection reset")}
	if _, err := VerifyExport(r, s.PublicKey()); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v; want the read error", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data[:len(r.data)/2+1])
	r.data = r.data[n:]
	return n, nil
}

// TestVerifyExportRepeatedCheckpoint checks that copies of one checkpoint
// are kept once, so a hostile export cannot grow memory with them.
func TestVerifyExportRepeatedCheckpoint(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	log := buildLog(3)
	c := cp(s, log, 3)
	cps := make([]Checkpoint, 50)
	for i := range cps {
		cps[i] = c
	}
	r, err := VerifyExport(bytes.NewReader(rawExport(t, s, cps, log)), s.PublicKey())
	if err != nil || !r.OK() || r.Checkpoints != 1 {
		t.Fatalf("report %q (%d checkpoints), err %v; want ok with 1 checkpoint", r, r.Checkpoints, err)
	}
}

func TestExportWriter(t *testing.T) {
	t.Parallel()
	s := testSigner(1)
	log := buildLog(4)
	log[2].Reason = `quote " backslash \ <tag> & ünïcode ` + "\n\t\x01"
	log[2].Seal(log[1].Hash)
	log[3].Seal(log[2].Hash)
	log[1].Time = log[1].Time.In(time.FixedZone("", 5*3600+1800))
	var b bytes.Buffer
	if err := WriteExport(&b, Header{}, []Checkpoint{cp(s, log, 4)}, entrySeq(log)); err != nil {
		t.Fatal(err)
	}
	// Each entry line is exactly what encoding/json writes.
	want := rawExport(t, s, []Checkpoint{cp(s, log, 4)}, log)
	gotLines, wantLines := strings.Split(b.String(), "\n"), strings.Split(string(want), "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%d lines; want %d", len(gotLines), len(wantLines))
	}
	if !strings.Contains(gotLines[0], `"format":"airlock-audit-export/v1"`) {
		t.Errorf("header %s does not name the format", gotLines[0])
	}
	for i := 2; i < len(gotLines); i++ {
		if gotLines[i] != wantLines[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, gotLines[i], wantLines[i])
		}
	}
	r, err := VerifyExport(&b, s.PublicKey())
	if err != nil || !r.OK() || r.Entries != 4 {
		t.Fatalf("report %q, err %v", r, err)
	}
}

func TestExportWriterErrors(t *testing.T) {
	t.Parallel()
	log := buildLog(3)
	if _, err := NewExportWriter(&bytes.Buffer{}, Header{Format: "v0"}, nil); err == nil {
		t.Error("NewExportWriter accepted another format")
	}
	x, _ := NewExportWriter(&bytes.Buffer{}, Header{}, nil)
	x.WriteEntry(&log[1])
	if err := x.WriteEntry(&log[0]); err == nil || !strings.Contains(err.Error(), "sequence order") {
		t.Errorf("out-of-order entry: err = %v", err)
	}
	bad := log[2]
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	x, _ = NewExportWriter(&bytes.Buffer{}, Header{}, nil)
	if err := x.WriteEntry(&bad); err == nil {
		t.Error("an entry dated in the year 10000 was written")
	}
	boom := errors.New("boom")
	err := WriteExport(&bytes.Buffer{}, Header{}, nil, func(yield func(*Entry, error) bool) {
		if yield(&log[0], nil) {
			yield(nil, boom)
		}
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteExport err = %v; want the iterator's error", err)
	}
	x, _ = NewExportWriter(&bytes.Buffer{}, Header{}, nil)
	x.Close()
	if err := x.WriteEntry(&log[0]); err == nil {
		t.Error("WriteEntry after Close succeeded")
	}
	if err := WriteExport(errWriter{}, Header{}, nil, entrySeq(log)); err == nil {
		t.Error("WriteExport hid a write error")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
