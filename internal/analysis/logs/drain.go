package logs

import (
	"container/list"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Defaults of Options.
const (
	DefaultDepth        = 4
	DefaultSimThreshold = 0.4
	DefaultMaxChildren  = 100
	DefaultMaxClusters  = 1000
	DefaultMaxExamples  = 3
)

// Options configures a Miner. The zero value gives Drain3's defaults with
// a bound of DefaultMaxClusters templates.
type Options struct {
	// Depth is the depth of the parse tree, Drain's "depth": the root, the
	// token-count level, then Depth-2 levels of leading tokens. At least 3;
	// 0 means DefaultDepth.
	Depth int
	// SimThreshold is the least share of equal tokens for a line to join a
	// template, in (0, 1]; 0 means DefaultSimThreshold.
	SimThreshold float64
	// MaxChildren bounds the children of a tree node; tokens beyond it go
	// to the `<*>` child. At least 2; 0 means DefaultMaxChildren.
	MaxChildren int
	// MaxClusters bounds the templates kept; the least recently matched
	// one is evicted first. 0 means DefaultMaxClusters.
	MaxClusters int
	// MaxLineBytes cuts longer lines before parsing; 0 means
	// DefaultMaxLineBytes.
	MaxLineBytes int
	// MaxExamples is how many example lines a template keeps; 0 means
	// DefaultMaxExamples, a negative value keeps none.
	MaxExamples int
	// ExtraKeys are logfmt or JSON keys appended to the message as
	// `key=value`; nil means "err" and "error". Message keys are ignored.
	ExtraKeys []string
}

// ErrOptions wraps every error NewMiner returns.
var ErrOptions = errors.New("logs: invalid options")

func (o Options) withDefaults() (Options, error) {
	if o.Depth == 0 {
		o.Depth = DefaultDepth
	}
	if o.SimThreshold == 0 {
		o.SimThreshold = DefaultSimThreshold
	}
	if o.MaxChildren == 0 {
		o.MaxChildren = DefaultMaxChildren
	}
	if o.MaxClusters == 0 {
		o.MaxClusters = DefaultMaxClusters
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxExamples == 0 {
		o.MaxExamples = DefaultMaxExamples
	} else if o.MaxExamples < 0 {
		o.MaxExamples = 0
	}
	switch {
	case o.Depth < 3:
		return o, fmt.Errorf("%w: depth %d is below 3 (root, token count, one leading token)", ErrOptions, o.Depth)
	case !(o.SimThreshold > 0 && o.SimThreshold <= 1):
		return o, fmt.Errorf("%w: similarity threshold %g is outside (0, 1]", ErrOptions, o.SimThreshold)
	case o.MaxChildren < 2:
		return o, fmt.Errorf("%w: max children %d is below 2", ErrOptions, o.MaxChildren)
	case o.MaxClusters < 1:
		return o, fmt.Errorf("%w: max clusters %d is below 1", ErrOptions, o.MaxClusters)
	case o.MaxLineBytes < 1:
		return o, fmt.Errorf("%w: max line bytes %d is below 1", ErrOptions, o.MaxLineBytes)
	}
	if o.ExtraKeys == nil {
		o.ExtraKeys = defaultExtraKeys
	} else {
		var keys []string
		for _, k := range o.ExtraKeys {
			if k != "" && !isMsgKey(k) && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		o.ExtraKeys = append([]string{}, keys...)
	}
	return o, nil
}

// Template is a snapshot of one mined template.
type Template struct {
	// ID identifies the template within its Miner; ids start at 1 and are
	// never reused, even after an eviction.
	ID int
	// Template is the tokens joined by single spaces, `<*>` for parameters.
	Template string
	// Count is the number of lines that matched.
	Count int
	// Levels counts the matched lines per Level.
	Levels [numLevels]int
	// Level is the highest level seen.
	Level Level
	// Examples are the first lines (cut to MaxLineBytes) seen at Level.
	Examples []string
}

// CountAtLeast returns how many matched lines were at level l or above.
func (t Template) CountAtLeast(l Level) int {
	return countAtLeast(t.Levels, l)
}

type cluster struct {
	id       int
	tokens   []string
	count    int
	levels   [numLevels]int
	level    Level
	examples []string
	leaf     *node
	elem     *list.Element // in Miner.lru
}

type node struct {
	parent   *node
	key      string
	children map[string]*node
	clusters []*cluster
}

// Miner mines templates from log lines with Drain. It is not safe for
// concurrent use. Its memory is bounded by MaxClusters templates, each
// with at most MaxExamples lines of MaxLineBytes, and a tree of at most
// 1 + MaxClusters*(Depth-1) nodes.
type Miner struct {
	opts    Options
	root    *node
	lru     *list.List // front: most recently matched *cluster
	nextID  int
	lines   int
	evicted int
	nodes   int
}

// NewMiner returns an empty Miner. It fails, wrapping ErrOptions, when an
// option is out of range.
func NewMiner(opts Options) (*Miner, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Miner{opts: o, root: &node{children: map[string]*node{}}, lru: list.New(), nextID: 1, nodes: 1}, nil
}

// Options returns the options in force, defaults filled in.
func (m *Miner) Options() Options { return m.opts }

// Lines returns the number of lines added.
func (m *Miner) Lines() int { return m.lines }

// Len returns the number of templates kept.
func (m *Miner) Len() int { return m.lru.Len() }

// Evicted returns the number of templates evicted to keep the bound.
func (m *Miner) Evicted() int { return m.evicted }

// Match is what Add did with a line.
type Match struct {
	// ID and Template identify the template the line joined, after it.
	ID       int
	Template string
	// Level is the level of the line.
	Level Level
	// Created is true when the line started a new template.
	Created bool
}

// Add mines one line. Trailing newlines are dropped and the line is cut
// to MaxLineBytes. The template it joins has exactly as many tokens as the
// masked content, each either `<*>` or equal to the line's token.
func (m *Miner) Add(raw string) Match {
	ln := ParseLine(raw, m.opts.MaxLineBytes, m.opts.ExtraKeys)
	return m.AddLine(ln)
}

// AddLine mines a line that ParseLine already split.
func (m *Miner) AddLine(ln Line) Match {
	m.lines++
	tokens := strings.Fields(Mask(ln.Content))
	c := m.search(tokens)
	created := false
	if c == nil {
		c = m.create(tokens)
		created = true
	} else {
		for i, t := range tokens {
			if c.tokens[i] != t && c.tokens[i] != Param {
				c.tokens[i] = Param
			}
		}
		m.lru.MoveToFront(c.elem)
	}
	c.count++
	lv := min(max(ln.Level, 0), numLevels-1)
	c.levels[lv]++
	if lv > c.level || (c.count == 1) {
		c.level = lv
		c.examples = c.examples[:0]
	}
	if lv == c.level && len(c.examples) < m.opts.MaxExamples {
		c.examples = append(c.examples, strings.Clone(ln.Raw))
	}
	return Match{ID: c.id, Template: strings.Join(c.tokens, " "), Level: ln.Level, Created: created}
}

// search walks the tree to a leaf and returns its most similar cluster at
// or above the threshold, or nil.
func (m *Miner) search(tokens []string) *cluster {
	n := m.root.children[strconv.Itoa(len(tokens))]
	if n == nil {
		return nil
	}
	for _, t := range tokens[:min(len(tokens), m.opts.Depth-2)] {
		next := n.children[t]
		if next == nil {
			next = n.children[Param]
		}
		if next == nil {
			return nil
		}
		n = next
	}
	var best *cluster
	bestSim, bestParams := -1.0, -1
	for _, c := range n.clusters {
		sim, params := similarity(c.tokens, tokens)
		if sim > bestSim || (sim == bestSim && params > bestParams) {
			best, bestSim, bestParams = c, sim, params
		}
	}
	if best == nil || bestSim < m.opts.SimThreshold {
		return nil
	}
	return best
}

// similarity is Drain's sequence similarity: the share of positions where
// the template's literal token equals the line's, and the template's
// parameter count as a tie-breaker. An empty sequence is fully similar.
func similarity(tmpl, tokens []string) (float64, int) {
	if len(tmpl) == 0 {
		return 1, 0
	}
	same, params := 0, 0
	for i, t := range tmpl {
		if t == Param {
			params++
		} else if t == tokens[i] {
			same++
		}
	}
	return float64(same) / float64(len(tmpl)), params
}

func hasDigit(s string) bool {
	return strings.ContainsAny(s, "0123456789")
}

// create adds a cluster for tokens, placing it in the tree as Drain does,
// and evicts the least recently used cluster beyond MaxClusters.
func (m *Miner) create(tokens []string) *cluster {
	if m.lru.Len() >= m.opts.MaxClusters {
		m.evict(m.lru.Back().Value.(*cluster))
	}
	// The tokens are substrings of the caller's line; copy them into one
	// fresh string so a template never pins a line it was mined from.
	c := &cluster{id: m.nextID, tokens: strings.Fields(strings.Clone(strings.Join(tokens, " ")))}
	m.nextID++
	n := m.child(m.root, strconv.Itoa(len(tokens)))
	for _, t := range tokens[:min(len(tokens), m.opts.Depth-2)] {
		switch {
		case n.children[t] != nil:
			n = n.children[t]
		case hasDigit(t):
			n = m.child(n, Param)
		case n.children[Param] != nil:
			if len(n.children) < m.opts.MaxChildren {
				n = m.child(n, t)
			} else {
				n = n.children[Param]
			}
		case len(n.children)+1 < m.opts.MaxChildren:
			n = m.child(n, t)
		default:
			n = m.child(n, Param)
		}
	}
	n.clusters = append(n.clusters, c)
	c.leaf = n
	c.elem = m.lru.PushFront(c)
	return c
}

func (m *Miner) child(n *node, key string) *node {
	if c := n.children[key]; c != nil {
		return c
	}
	c := &node{parent: n, key: key, children: map[string]*node{}}
	n.children[key] = c
	m.nodes++
	return c
}

// evict removes c from the LRU list and its leaf, then prunes the nodes
// that no longer lead to any cluster.
func (m *Miner) evict(c *cluster) {
	m.lru.Remove(c.elem)
	m.evicted++
	n := c.leaf
	if i := slices.Index(n.clusters, c); i >= 0 {
		n.clusters = slices.Delete(n.clusters, i, i+1)
	}
	for n != m.root && len(n.clusters) == 0 && len(n.children) == 0 {
		delete(n.parent.children, n.key)
		m.nodes--
		n = n.parent
	}
}

// Templates returns a snapshot of the templates kept, most frequent first,
// then by id. The caller owns the result.
func (m *Miner) Templates() []Template {
	out := make([]Template, 0, m.lru.Len())
	for e := m.lru.Front(); e != nil; e = e.Next() {
		out = append(out, m.snapshot(e.Value.(*cluster)))
	}
	slices.SortFunc(out, func(a, b Template) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return a.ID - b.ID
	})
	return out
}

func (m *Miner) snapshot(c *cluster) Template {
	return Template{
		ID:       c.id,
		Template: strings.Join(c.tokens, " "),
		Count:    c.count,
		Levels:   c.levels,
		Level:    c.level,
		Examples: slices.Clone(c.examples),
	}
}
