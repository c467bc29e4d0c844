package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 15, 0, 0, 123456789, time.UTC)

func sampleEntry() Entry {
	return Entry{
		Seq: 7, Time: t0, Actor: "alice", Action: "update", Kind: "Environment", Name: "prod",
		Revision: 7, Reason: "rotate keys", StateHash: "sha256:aa", PrevHash: GenesisHash,
	}
}

func TestComputeHashCoversEveryField(t *testing.T) {
	t.Parallel()
	base := sampleEntry()
	h := base.ComputeHash()
	if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
		t.Fatalf("hash %q is not sha256:<64 hex>", h)
	}
	if again := base.ComputeHash(); again != h {
		t.Fatalf("hash is not deterministic: %s then %s", h, again)
	}
	changes := map[string]func(e *Entry){
		"seq":       func(e *Entry) { e.Seq++ },
		"time":      func(e *Entry) { e.Time = e.Time.Add(time.Nanosecond) },
		"actor":     func(e *Entry) { e.Actor = "mallory" },
		"action":    func(e *Entry) { e.Action = "delete" },
		"kind":      func(e *Entry) { e.Kind = "Pipeline" },
		"name":      func(e *Entry) { e.Name = "dev" },
		"revision":  func(e *Entry) { e.Revision++ },
		"reason":    func(e *Entry) { e.Reason = "" },
		"stateHash": func(e *Entry) { e.StateHash = "sha256:ab" },
		"prevHash":  func(e *Entry) { e.PrevHash = "sha256:00" },
		// Moving a byte between adjacent fields keeps the concatenation
		// but must change the hash: fields are length-prefixed.
		"boundary": func(e *Entry) { e.Actor, e.Action = "alicee", "update"[1:] },
	}
	for name, change := range changes {
		e := base
		change(&e)
		if e.ComputeHash() == h {
			t.Errorf("changing %s leaves the hash unchanged", name)
		}
	}
}

func TestComputeHashIgnoresTimeZone(t *testing.T) {
	t.Parallel()
	a := sampleEntry()
	b := a
	b.Time = a.Time.In(time.FixedZone("CET", 3600))
	if a.ComputeHash() != b.ComputeHash() {
		t.Fatal("the same instant in another zone hashes differently")
	}
}

func TestComputeHashLongFields(t *testing.T) {
	t.Parallel()
	a := sampleEntry()
	a.Reason = strings.Repeat("x", 2000) // beyond the stack buffer
	b := a
	b.Reason = strings.Repeat("x", 1999) + "y"
	if a.ComputeHash() == b.ComputeHash() {
		t.Fatal("a change past the first 512 bytes is not hashed")
	}
}

func TestComputeHashAllocations(t *testing.T) {
	e := sampleEntry()
	if n := testing.AllocsPerRun(100, func() { _ = e.ComputeHash() }); n > 1 {
		t.Fatalf("ComputeHash allocates %v times; want at most 1 (the result)", n)
	}
}

func TestSeal(t *testing.T) {
	t.Parallel()
	e := sampleEntry()
	e.Time = t0.In(time.FixedZone("X", -5*3600))
	e.Seal("sha256:prev")
	if e.PrevHash != "sha256:prev" {
		t.Errorf("PrevHash = %q", e.PrevHash)
	}
	if e.Time.Location() != time.UTC {
		t.Errorf("Seal left time in %v; want UTC", e.Time.Location())
	}
	if e.Hash != e.ComputeHash() {
		t.Errorf("Hash %s does not match ComputeHash %s", e.Hash, e.ComputeHash())
	}
	// The sealed entry survives a JSON round trip, as in an export.
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ComputeHash() != e.Hash {
		t.Error("the hash does not survive a JSON round trip")
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, `null`},
		{"key order", json.RawMessage(`{"b":1,"a":{"d":2,"c":3}}`), `{"a":{"c":3,"d":2},"b":1}`},
		{"white space", json.RawMessage("{ \"a\" :\n [1, 2 ] }"), `{"a":[1,2]}`},
		{"big integer kept", json.RawMessage(`{"n":12345678901234567890123}`), `{"n":12345678901234567890123}`},
		{"int64 beyond float precision", json.RawMessage(`9007199254740993`), `9007199254740993`},
		{"number as written", json.RawMessage(`[1.50,1e3,-0]`), `[1.50,1e3,-0]`},
		{"no HTML escaping", map[string]string{"q": "<a&b>"}, `{"q":"<a&b>"}`},
		{"struct fields sorted", struct {
			Z int `json:"z"`
			A int `json:"a"`
		}{1, 2}, `{"a":2,"z":1}`},
		{"arrays keep order", []int{3, 1, 2}, `[3,1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonical(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalError(t *testing.T) {
	t.Parallel()
	if _, err := Canonical(func() {}); err == nil {
		t.Fatal("a func encoded without error")
	}
	if _, err := StateHash(make(chan int)); err == nil {
		t.Fatal("a chan hashed without error")
	}
}

func TestStateHash(t *testing.T) {
	t.Parallel()
	a, err := StateHash(json.RawMessage(`{"spec":{"x":1,"y":[1,2]},"name":"prod"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := StateHash(map[string]any{"name": "prod", "spec": map[string]any{"y": []int{1, 2}, "x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("the same state in another key order hashes differently: %s vs %s", a, b)
	}
	c, _ := StateHash(json.RawMessage(`{"spec":{"x":2,"y":[1,2]},"name":"prod"}`))
	if c == a {
		t.Error("a changed value hashes the same")
	}
	// 1 and 1.0 are different texts; the hash is over the text as written.
	d1, _ := StateHash(json.RawMessage(`{"n":1}`))
	d2, _ := StateHash(json.RawMessage(`{"n":1.0}`))
	if d1 == d2 {
		t.Error("1 and 1.0 hash the same; numbers are not kept as written")
	}
	n, _ := StateHash(nil)
	if want := "sha256:74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"; n != want { // sha256("null")
		t.Errorf("StateHash(nil) = %s; want %s", n, want)
	}
}
