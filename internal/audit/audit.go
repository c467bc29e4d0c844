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
	"time"
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
func StateHash(v any) (string, error) {
	c, err := Canonical(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Canonical returns v as canonical JSON.
func Canonical(v any) ([]byte, error) {
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
	if err := enc.Encode(generic); err != nil { // maps encode with sorted keys
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}
