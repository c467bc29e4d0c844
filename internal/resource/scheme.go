package resource

import (
	"fmt"
	"sort"
	"strings"
)

// Kind describes one kind of resource to the decoder, the store and the API.
type Kind struct {
	// Name is the kind as written in documents, e.g. "Environment".
	Name string
	// Plural is the lower-case word used in URLs and the CLI, e.g. "environments".
	Plural string
	// Aliases are further words the CLI accepts, e.g. "env".
	Aliases []string
	// NewSpec returns a pointer to a zero spec; the decoder checks documents
	// against its type and fields.
	NewSpec func() any
	// Validate checks one decoded spec on its own (cross-object rules live in
	// the services). It may be nil.
	Validate func(obj *Object, spec any) error
	// Declarative is true for kinds a user may create with apply.
	Declarative bool
}

// Scheme is the registry of kinds. It is built once at start-up and then
// only read, so it is safe for concurrent use after the last Register.
type Scheme struct {
	kinds  map[string]*Kind
	lookup map[string]*Kind
}

// NewScheme returns an empty registry.
func NewScheme() *Scheme {
	return &Scheme{kinds: map[string]*Kind{}, lookup: map[string]*Kind{}}
}

// Register adds a kind. It panics on a duplicate name or alias: that is a
// programming error found by any test.
func (s *Scheme) Register(k Kind) {
	if _, dup := s.kinds[k.Name]; dup {
		panic("resource: kind registered twice: " + k.Name)
	}
	kp := &k
	s.kinds[k.Name] = kp
	for _, w := range append([]string{k.Name, k.Plural}, k.Aliases...) {
		w = strings.ToLower(w)
		if other, dup := s.lookup[w]; dup && other != kp {
			panic("resource: word " + w + " names both " + other.Name + " and " + k.Name)
		}
		s.lookup[w] = kp
	}
}

// Lookup finds a kind by its name, plural or an alias, ignoring case.
func (s *Scheme) Lookup(word string) (*Kind, bool) {
	k, ok := s.lookup[strings.ToLower(word)]
	return k, ok
}

// MustLookup is Lookup for a word known to be registered.
func (s *Scheme) MustLookup(word string) *Kind {
	k, ok := s.Lookup(word)
	if !ok {
		panic("resource: unknown kind " + word)
	}
	return k
}

// Kinds returns every registered kind sorted by name.
func (s *Scheme) Kinds() []*Kind {
	out := make([]*Kind, 0, len(s.kinds))
	for _, k := range s.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// KindNames lists the registered kind names, for error messages.
func (s *Scheme) KindNames(declarativeOnly bool) string {
	var names []string
	for _, k := range s.Kinds() {
		if !declarativeOnly || k.Declarative {
			names = append(names, k.Name)
		}
	}
	return strings.Join(names, ", ")
}

// UnknownKindError is returned for a kind word the scheme does not know.
type UnknownKindError struct {
	Word    string
	Allowed string
}

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("unknown kind %q; known kinds: %s", e.Word, e.Allowed)
}
