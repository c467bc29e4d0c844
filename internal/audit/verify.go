package audit

import (
	"bufio"
	"bytes"
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
// whatever the length of the log. It is not safe for concurrent use.
type Verifier struct {
	pub      ed25519.PublicKey
	cps      []Checkpoint
	next     int    // index of the next checkpoint to meet
	prev     string // hash of the last entry added
	prevPrev string // hash of the entry before it
	report   Report
}

// NewVerifier prepares to verify a log against checkpoints signed by pub.
// A checkpoint with a bad signature or another key breaks verification at
// once: an unverifiable checkpoint is evidence of tampering too. So do two
// checkpoints that name different heads for the same size.
func NewVerifier(pub ed25519.PublicKey, checkpoints []Checkpoint) *Verifier {
	return newVerifier(pub, checkpoints, false)
}

// newVerifier is NewVerifier; verified says every signature was already
// checked, so they are not checked twice.
func newVerifier(pub ed25519.PublicKey, checkpoints []Checkpoint, verified bool) *Verifier {
	v := &Verifier{pub: pub, prev: GenesisHash, prevPrev: GenesisHash}
	cps := append([]Checkpoint(nil), checkpoints...)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	for i, c := range cps {
		if !verified && !VerifyCheckpoint(pub, c) {
			v.report.Broken = &Break{Reason: badSignature(pub, c)}
			return v
		}
		if c.Size < 0 || (c.Size == 0 && c.Head != GenesisHash) {
			v.report.Broken = &Break{Reason: fmt.Sprintf("a signed checkpoint claims size %d with head %s, which no log has", c.Size, short(c.Head))}
			return v
		}
		if i > 0 && c.Size == cps[i-1].Size && c.Head != cps[i-1].Head {
			v.report.Broken = &Break{Reason: fmt.Sprintf("two signed checkpoints at size %d name different heads: the log was rewritten", c.Size)}
			return v
		}
	}
	v.cps = cps
	v.report.Checkpoints = len(cps)
	for v.next < len(v.cps) && v.cps[v.next].Size == 0 {
		v.report.LastCheckpoint = &v.cps[v.next]
		v.next++
	}
	return v
}

func badSignature(pub ed25519.PublicKey, c Checkpoint) string {
	if c.KeyID != KeyID(pub) {
		return fmt.Sprintf("checkpoint at size %d names key %s and does not carry a valid signature by key %s: it was signed by another key, or forged", c.Size, c.KeyID, KeyID(pub))
	}
	return fmt.Sprintf("checkpoint at size %d (key %s) does not carry a valid signature by key %s: it was forged or altered", c.Size, c.KeyID, KeyID(pub))
}

// Add checks the next entry. It returns false once the log is broken; later
// entries are then ignored. e is not kept.
func (v *Verifier) Add(e *Entry) bool {
	if v.report.Broken != nil {
		return false
	}
	want := v.report.Entries + 1
	switch {
	case e.Seq < want:
		v.fail(want, fmt.Sprintf("entry %d appears again after entry %d: entries were reordered or duplicated", e.Seq, want-1))
	case e.Seq > want:
		v.fail(want, fmt.Sprintf("entry %d is missing (entry %d comes next): entries were deleted or reordered", want, e.Seq))
	case e.Hash != e.ComputeHash():
		v.fail(e.Seq, "its content does not match its hash: the entry was modified")
	case e.PrevHash != v.prev:
		pinned := want == 1 || (v.report.LastCheckpoint != nil && v.report.LastCheckpoint.Size == want-1)
		if pinned {
			v.fail(e.Seq, fmt.Sprintf("it does not link to entry %d (prevHash %s, expected %s): the entry was rewritten", want-1, short(e.PrevHash), short(v.prev)))
		} else {
			// Entry want-1 is vouched for only by this link: either it or
			// this entry was rewritten with a fresh hash.
			v.report.Entries, v.report.Head = want-2, v.prevPrev
			if want == 2 {
				v.report.Head = ""
			}
			v.fail(want-1, fmt.Sprintf("entry %d does not link to it (prevHash %s, expected %s): entry %d or %d was rewritten", want, short(e.PrevHash), short(v.prev), want-1, want))
		}
	}
	if v.report.Broken != nil {
		return false
	}
	v.prevPrev, v.prev = v.prev, e.Hash
	v.report.Entries = e.Seq
	v.report.Head = e.Hash
	for v.next < len(v.cps) && v.cps[v.next].Size <= e.Seq {
		c := &v.cps[v.next]
		if c.Head != e.Hash {
			from := int64(1)
			if lc := v.report.LastCheckpoint; lc != nil {
				from = lc.Size + 1
				v.report.Entries, v.report.Head = lc.Size, lc.Head
			} else {
				v.report.Entries, v.report.Head = 0, ""
			}
			v.fail(from, fmt.Sprintf("entries %d to %d differ from the checkpoint signed at %s: the log was rewritten", from, c.Size, c.Time.UTC().Format(time.RFC3339)))
			return false
		}
		v.report.LastCheckpoint = c
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
		v.report.Broken = &Break{Seq: v.report.Entries + 1, Reason: fmt.Sprintf("the log ends at entry %d but a signed checkpoint covers %d entries: the tail was truncated", v.report.Entries, c.Size)}
	}
	r := v.report
	if r.LastCheckpoint != nil {
		cp := *r.LastCheckpoint
		r.LastCheckpoint = &cp
	}
	return r
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

// VerifyExport reads an export and verifies it against pub. An export is
// JSON Lines: a header line, then every checkpoint, then the entries in
// sequence order (ExportWriter writes one). VerifyExport streams the
// entries, so memory stays flat for any length of log: it holds the
// checkpoints, whose signatures it checks as it reads them, and one line of
// at most MaxExportLine bytes. Unlike an online verification, it requires
// at least one signed checkpoint: without one an export proves nothing about
// who wrote it.
//
// It returns an error when r cannot be read or is not an export at all (no
// valid header, or no checkpoint). Any problem after the header, including
// a malformed or over-long line, is evidence of tampering and is reported
// in Report.Broken, naming the first entry that cannot be trusted.
func VerifyExport(r io.Reader, pub ed25519.PublicKey) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxExportLine)
	var (
		cps    []Checkpoint
		sizes  map[int64]int // checkpoint size -> index in cps
		v      *Verifier
		lineNo int
		e      Entry
	)
	broken := func(seq int64, reason string) (Report, error) {
		if v == nil {
			return Report{Checkpoints: len(cps), Broken: &Break{Seq: seq, Reason: reason}}, nil
		}
		v.fail(seq, reason)
		return v.Finish(), nil
	}
	next := func() int64 {
		if v == nil {
			return 1
		}
		return v.report.Entries + 1
	}
	for sc.Scan() {
		lineNo++
		raw := sc.Bytes()
		if lineNo == 1 {
			if err := checkHeader(raw); err != nil {
				return Report{}, err
			}
			continue
		}
		if len(raw) == 0 {
			continue
		}
		if parseEntryLine(raw, &e) {
			if v == nil {
				if len(cps) == 0 {
					return Report{}, errNoCheckpoint
				}
				v = newVerifier(pub, cps, true)
			}
			if !v.Add(&e) {
				return v.Finish(), nil
			}
			continue
		}
		l, err := parseLine(raw)
		if err != nil {
			if v == nil && len(cps) == 0 {
				return broken(0, fmt.Sprintf("export line %d is malformed (%v): the export was altered", lineNo, err))
			}
			return broken(next(), fmt.Sprintf("export line %d is malformed (%v): the export was altered", lineNo, err))
		}
		switch {
		case l.Header != nil:
			return broken(next(), fmt.Sprintf("export line %d is a second header: the export was altered", lineNo))
		case l.Checkpoint != nil:
			if v != nil {
				return broken(next(), fmt.Sprintf("export line %d is a checkpoint among the entries: the export was altered", lineNo))
			}
			c := *l.Checkpoint
			if !VerifyCheckpoint(pub, c) {
				return broken(0, fmt.Sprintf("export line %d: %s", lineNo, badSignature(pub, c)))
			}
			if i, dup := sizes[c.Size]; dup {
				if cps[i].Head != c.Head {
					return broken(0, fmt.Sprintf("two signed checkpoints at size %d name different heads: the log was rewritten", c.Size))
				}
				continue // a copy adds nothing, and must not grow memory
			}
			if sizes == nil {
				sizes = map[int64]int{}
			}
			sizes[c.Size] = len(cps)
			cps = append(cps, c)
		case l.Entry != nil:
			if v == nil {
				if len(cps) == 0 {
					return Report{}, errNoCheckpoint
				}
				v = newVerifier(pub, cps, true)
			}
			if !v.Add(l.Entry) {
				return v.Finish(), nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) && lineNo > 0 {
			return broken(next(), fmt.Sprintf("export line %d is longer than %d bytes: the export was altered", lineNo+1, MaxExportLine))
		}
		return Report{}, fmt.Errorf("read export after line %d: %w", lineNo, err)
	}
	if lineNo == 0 {
		return Report{}, errors.New("not an airlock audit export: it is empty")
	}
	if v == nil {
		if len(cps) == 0 {
			return Report{}, errors.New("the export holds no entries and no signed checkpoint")
		}
		v = newVerifier(pub, cps, true)
	}
	return v.Finish(), nil
}

var errNoCheckpoint = errors.New("the export holds no signed checkpoint, so nothing ties it to the server's key; export again from a current server")

func checkHeader(raw []byte) error {
	l, err := parseLine(raw)
	if err != nil || l.Header == nil {
		return errors.New("not an airlock audit export: the first line is not its header")
	}
	if l.Header.Format != ExportFormat {
		return fmt.Errorf("export format %q is not %q; use an airlock that reads it", l.Header.Format, ExportFormat)
	}
	return nil
}

// parseLine decodes one line strictly: known fields only, exactly one of
// header, checkpoint and entry, nothing after the object.
func parseLine(raw []byte) (Line, error) {
	var l Line
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Line{}, err
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return Line{}, errors.New("text after the JSON object")
	}
	n := 0
	for _, set := range []bool{l.Header != nil, l.Checkpoint != nil, l.Entry != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Line{}, errors.New("expected exactly one of header, checkpoint or entry")
	}
	return l, nil
}
