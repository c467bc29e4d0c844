package sqlstore

import (
	"context"
	"fmt"
	"hash/maphash"
)

// nameFilter is a Bloom filter over the (kind, name) of every object in the
// database, so that a Create of a new name, the common case, needs no read
// to learn that the name is free. It may hold names that no longer exist
// (deleted objects, creates that were rolled back): those only cost the
// read that the filter would have saved. It must never lack a name that
// exists, so it is only trusted for the audit head it was brought up to
// (seq): every object change appends an audit entry, and a writer that
// finds the head elsewhere first adds the names created by the entries in
// between. It belongs to the writer goroutine.
//
// It grows without being rebuilt: once its newest layer holds as many
// names as it has room for, new names go into a new layer twice its size,
// and a name is absent only if it is absent from every layer. Rebuilding
// instead means reading every object's name with every write waiting: at
// 262,144 objects one such rebuild stalled the writer for 200 ms. Only
// opening the store (its first write) reads every name.
type nameFilter struct {
	seed   maphash.Seed
	layers []bloomLayer // each twice the size of the one before; nil: not built
	seq    int64        // the audit head the filter covers; -1 when it must be rebuilt
}

// bloomLayer is one Bloom filter of a nameFilter.
type bloomLayer struct {
	bits  []uint64
	added int // names added
}

func newLayer(bits int) bloomLayer {
	return bloomLayer{bits: make([]uint64, bits/64)}
}

// room is how many names the layer holds at 16 bits a name.
func (l *bloomLayer) room() int { return len(l.bits) * 64 / 16 }

// nameHashes is how many bit positions each name sets (about 0.1% false
// positives per layer at 16 bits per name).
const nameHashes = 7

// minFilterBits is the smallest filter (128 KiB).
const minFilterBits = 1 << 20

// maxCatchUp is how many other writers' entries a filter catches up on
// before it is rebuilt instead.
const maxCatchUp = 100000

func newNameFilter() *nameFilter { return &nameFilter{seed: maphash.MakeSeed(), seq: -1} }

func (f *nameFilter) hash(k objKey) (uint64, uint64) {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteString(k.kind)
	h.WriteByte(0)
	h.WriteString(k.name)
	a := h.Sum64()
	return a, a>>33 | a<<31 | 1
}

// add records that k may exist.
func (f *nameFilter) add(k objKey) {
	if f.layers == nil {
		return
	}
	l := &f.layers[len(f.layers)-1]
	if l.added >= l.room() {
		f.layers = append(f.layers, newLayer(2*len(l.bits)*64))
		l = &f.layers[len(f.layers)-1]
	}
	a, b := f.hash(k)
	n := uint64(len(l.bits) * 64)
	for i := range uint64(nameHashes) {
		p := (a + i*b) % n
		l.bits[p/64] |= 1 << (p % 64)
	}
	l.added++
}

// absent reports whether k is certainly not in the database.
func (f *nameFilter) absent(k objKey) bool {
	if f.seq < 0 || f.layers == nil {
		return false
	}
	a, b := f.hash(k)
layers:
	for _, l := range f.layers {
		n := uint64(len(l.bits) * 64)
		for i := range uint64(nameHashes) {
			p := (a + i*b) % n
			if l.bits[p/64]&(1<<(p%64)) == 0 {
				continue layers // not in this layer
			}
		}
		return false // maybe in this one
	}
	return true
}

// sync brings the filter up to head, the audit head tx has locked: it
// builds it from the objects table when it is invalid or too far behind,
// and otherwise adds the names created by the entries since the head it
// covers. On error the filter is left invalid, and creates read.
func (f *nameFilter) sync(ctx context.Context, s *Store, tx dbtx, head int64) error {
	if f.seq == head && f.layers != nil {
		return nil
	}
	covered := f.seq
	f.seq = -1
	if f.layers != nil && covered >= 0 && covered <= head && head-covered <= maxCatchUp {
		if err := f.scan(ctx, s, tx, s.q.createdSince, covered, head); err != nil {
			return fmt.Errorf("catch up on names created by other writers: %w", err)
		}
		f.seq = head
		return nil
	}
	var n int
	if err := s.queryRow(ctx, tx, "SELECT count(*) FROM objects").Scan(&n); err != nil {
		return fmt.Errorf("count objects: %w", err)
	}
	size := minFilterBits
	for size < 32*n { // room to double before the next layer
		size *= 2
	}
	f.layers = []bloomLayer{newLayer(size)}
	if err := f.scan(ctx, s, tx, "SELECT kind, name FROM objects"); err != nil {
		f.layers = nil
		return fmt.Errorf("read object names: %w", err)
	}
	f.seq = head
	return nil
}

func (f *nameFilter) scan(ctx context.Context, s *Store, tx dbtx, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var k objKey
	for rows.Next() {
		if err := rows.Scan(&k.kind, &k.name); err != nil {
			return err
		}
		f.add(k)
	}
	return rows.Err()
}
