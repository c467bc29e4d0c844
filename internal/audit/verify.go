package audit

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
)

// Break is the first problem a verification found.
type Break struct {
	Seq    int64  `json:"seq"` // the first entry that cannot be trusted (0 for a checkpoint problem)
	Reason string `json:"reason"`
}

// Report is the outcome of verifying a log.
type Report struct {
	Entries        int64       `json:"entries"`
	Head           string      `json:"head"`
	Checkpoints    int         `json:"checkpoints"`
	LastCheckpoint *Checkpoint `json:"lastCheckpoint,omitempty"`
	Broken         *Break      `json:"broken,omitempty"`
}

// OK reports whether the log verified.
func (r Report) OK() bool { return r.Broken == nil }

// String is the one-line summary the CLI prints.
func (r Report) String() string {
	if r.Broken != nil {
		if r.Broken.Seq > 0 {
			return fmt.Sprintf("broken at entry %d: %s", r.Broken.Seq, r.Broken.Reason)
		}
		return "broken: " + r.Broken.Reason
	}
	switch {
	case r.LastCheckpoint == nil:
		return fmt.Sprintf("ok: %d entries, chain intact, no signed checkpoint yet", r.Entries)
	case r.LastCheckpoint.Size == r.Entries:
		return fmt.Sprintf("ok: %d entries, chain intact, last checkpoint signed", r.Entries)
	default:
		return fmt.Sprintf("ok: %d entries, chain intact, last checkpoint signed (covers %d; %d entries since)",
			r.Entries, r.LastCheckpoint.Size, r.Entries-r.LastCheckpoint.Size)
	}
}

// Verifier checks a stream of entries, in sequence order, against the chain
// rules and a set of signed checkpoints. It holds O(checkpoints) memory
// whatever the length of the log.
type Verifier struct {
	pub     ed25519.PublicKey
	cps     []Checkpoint
	next    int // index of the next checkpoint to meet
	prev    string
	report  Report
	started bool
}

// NewVerifier prepares to verify a log against checkpoints signed by pub.
// A checkpoint with a bad signature or another key breaks verification at
// once: an unverifiable checkpoint is evidence of tampering too.
func NewVerifier(pub ed25519.PublicKey, checkpoints []Checkpoint) *Verifier {
	v := &Verifier{pub: pub, prev: GenesisHash}
	cps := append([]Checkpoint(nil), checkpoints...)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	for i, c := range cps {
		if !VerifyCheckpoint(pub, c) {
			v.report.Broken = &Break{Reason: fmt.Sprintf("checkpoint at size %d (key %s) does not carry a valid signature by key %s", c.Size, c.KeyID, KeyID(pub))}
			return v
		}
		if i > 0 && c.Size == cps[i-1].Size && c.Head != cps[i-1].Head {
			v.report.Broken = &Break{Reason: fmt.Sprintf("two signed checkpoints at size %d name different heads: the log was rewritten", c.Size)}
			return v
		}
	}
	v.cps = cps
	v.report.Checkpoints = len(cps)
	return v
}

// Add checks the next entry. It returns false once the log is broken; later
// entries are then ignored.
func (v *Verifier) Add(e *Entry) bool {
	if v.report.Broken != nil {
		return false
	}
	want := v.report.Entries + 1
	switch {
	case e.Seq < want:
		v.fail(e.Seq, fmt.Sprintf("entry %d appears again after entry %d: entries were reordered or duplicated", e.Seq, want-1))
	case e.Seq > want:
		v.fail(want, fmt.Sprintf("entries %d to %d are missing: they were deleted", want, e.Seq-1))
	case e.Hash != e.ComputeHash():
		v.fail(e.Seq, "its content does not match its hash: the entry was modified")
	case e.PrevHash != v.prev:
		v.fail(e.Seq, fmt.Sprintf("it does not link to entry %d (prevHash %s, expected %s): the chain was altered", want-1, short(e.PrevHash), short(v.prev)))
	}
	if v.report.Broken != nil {
		return false
	}
	v.prev = e.Hash
	v.report.Entries = e.Seq
	v.report.Head = e.Hash
	for v.next < len(v.cps) && v.cps[v.next].Size <= e.Seq {
		c := v.cps[v.next]
		if c.Size == e.Seq && c.Head != e.Hash {
			v.fail(e.Seq, fmt.Sprintf("it differs from the signed checkpoint of %s: the log was rewritten", c.Time.Format(time.RFC3339)))
			return false
		}
		cp := c
		v.report.LastCheckpoint = &cp
		v.next++
	}
	return true
}

func (v *Verifier) fail(seq int64, reason string) {
	v.report.Broken = &Break{Seq: seq, Reason: reason}
}

// Finish returns the report once every entry has been added.
func (v *Verifier) Finish() Report {
	if v.report.Broken == nil && v.next < len(v.cps) {
		c := v.cps[len(v.cps)-1]
		if c.Size > v.report.Entries {
			v.report.Broken = &Break{Seq: v.report.Entries + 1, Reason: fmt.Sprintf("the log ends at entry %d but a signed checkpoint covers %d entries: the tail was truncated", v.report.Entries, c.Size)}
		}
	}
	return v.report
}

func short(h string) string {
	if len(h) > 19 {
		return h[:19] + "…"
	}
	return h
}

// Header is the first line of an export.
type Header struct {
	Format     string    `json:"format"` // "airlock-audit-export/v1"
	KeyID      string    `json:"keyId"`
	PublicKey  string    `json:"publicKey"` // PEM, for convenience; verify against a key you trust
	ExportedAt time.Time `json:"exportedAt"`
}

// ExportFormat names the export's layout.
const ExportFormat = "airlock-audit-export/v1"

// Line is one line of an export: exactly one field is set. The header comes
// first, then every checkpoint, then the entries in order.
type Line struct {
	Header     *Header     `json:"header,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Entry      *Entry      `json:"entry,omitempty"`
}

// MaxExportLine bounds one line of an export, so a hostile file cannot make
// the reader allocate without limit.
const MaxExportLine = 64 << 10

// VerifyExport reads an export and verifies it against pub. It streams the
// entries, so memory stays flat for any length of log. Unlike an online
// verification, it requires at least one signed checkpoint: without one an
// export proves nothing about who wrote it.
func VerifyExport(r io.Reader, pub ed25519.PublicKey) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxExportLine)
	var (
		cps     []Checkpoint
		v       *Verifier
		lineNo  int
		sawHead bool
	)
	for sc.Scan() {
		lineNo++
		raw := sc.Bytes()
		if len(raw) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(raw, &l); err != nil {
			return Report{}, fmt.Errorf("export line %d: %w", lineNo, err)
		}
		switch {
		case l.Header != nil:
			if sawHead || lineNo != 1 {
				return Report{}, fmt.Errorf("export line %d: a header may only be the first line", lineNo)
			}
			if l.Header.Format != ExportFormat {
				return Report{}, fmt.Errorf("export line %d: format %q is not %q", lineNo, l.Header.Format, ExportFormat)
			}
			sawHead = true
		case l.Checkpoint != nil:
			if v != nil {
				return Report{}, fmt.Errorf("export line %d: checkpoints must come before the entries", lineNo)
			}
			cps = append(cps, *l.Checkpoint)
		case l.Entry != nil:
			if v == nil {
				if len(cps) == 0 {
					return Report{}, errors.New("the export holds no signed checkpoint, so nothing ties it to the server's key; export again from a current server")
				}
				v = NewVerifier(pub, cps)
			}
			v.Add(l.Entry)
		default:
			return Report{}, fmt.Errorf("export line %d: expected one of header, checkpoint or entry", lineNo)
		}
	}
	if err := sc.Err(); err != nil {
		return Report{}, fmt.Errorf("read export after line %d: %w", lineNo, err)
	}
	if !sawHead {
		return Report{}, errors.New("not an airlock audit export: the header line is missing")
	}
	if v == nil {
		if len(cps) == 0 {
			return Report{}, errors.New("the export holds no entries and no signed checkpoint")
		}
		v = NewVerifier(pub, cps)
	}
	return v.Finish(), nil
}
