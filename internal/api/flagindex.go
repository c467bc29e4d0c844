package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/store"
)

// ofrepCache keeps what OFREP serves from in memory — every environment's
// compiled flags, and the principals of the evaluation keys — so an
// evaluation reads no database.
//
// Both are valid for one generation. The generation moves on when a Flag,
// Segment, Token or RoleBinding changes, as a store watch reports it (for
// writes by another replica that is within the store's poll interval,
// 500 ms by default), and at once after every write request this API
// serves, so a client that changed a flag sees the change on its next
// evaluation. Should a watch end, the cache stops trusting itself and
// every request reads the store again, as before the cache.
type ofrepCache struct {
	once sync.Once
	live atomic.Bool
	gen  atomic.Uint64

	mu   sync.Mutex // serializes rebuilds
	snap atomic.Pointer[flagSnapshot]

	principals sync.Map // the SHA-256 of a token → cachedPrincipal
}

// principalTTL bounds how long a cached principal is used even when no
// change is seen, so a missed watch event cannot keep a revoked key alive.
const principalTTL = 5 * time.Second

type cachedPrincipal struct {
	p     *auth.Principal
	gen   uint64
	until time.Time
}

// flagSnapshot is every environment's compiled flags at one generation.
type flagSnapshot struct {
	gen  uint64
	envs map[string]compiledFlags
	// empty is what an environment without flags gets (its tag covers the
	// segments).
	empty compiledFlags
	err   error
}

// compiledFlags are an environment's compiled flags, keyed by flag key, and
// a tag that changes whenever one of them (or a segment) changes.
type compiledFlags struct {
	tag string
	set map[string][]*flag.Evaluator
}

// invalidate moves the cache to a new generation.
func (c *ofrepCache) invalidate() { c.gen.Add(1) }

// start watches the kinds the cache depends on, once per API.
func (a *API) startOFREPCache() {
	a.ofrep.once.Do(func() {
		ctx := context.Background()
		seq, _, err := a.Store.Audit().Head(ctx)
		if err != nil {
			a.logger.Warn("OFREP cache: reading the audit head failed; every evaluation reads the store", slog.Any("error", err))
			return
		}
		kinds := []string{flag.KindName, flag.SegmentKindName, auth.TokenKind, auth.RoleBindingKind}
		var chans []<-chan store.Event
		for _, k := range kinds {
			ch, err := a.Store.Watch(ctx, k, seq)
			if err != nil {
				a.logger.Warn("OFREP cache: watching failed; every evaluation reads the store", slog.String("kind", k), slog.Any("error", err))
				return
			}
			chans = append(chans, ch)
		}
		a.ofrep.live.Store(true)
		for _, ch := range chans {
			go func() {
				for range ch {
					a.ofrep.invalidate()
				}
				a.ofrep.live.Store(false)
			}()
		}
	})
}

// flagSet returns the compiled flags of env, keyed by flag key, and a tag
// that changes whenever one of them (or a segment) changes.
func (a *API) flagSet(ctx context.Context, env string) (map[string][]*flag.Evaluator, string, error) {
	a.startOFREPCache()
	s, err := a.flagSnapshot(ctx)
	if err != nil {
		return nil, "", err
	}
	cf, ok := s.envs[env]
	if !ok {
		cf = s.empty
	}
	return cf.set, cf.tag, nil
}

func (a *API) flagSnapshot(ctx context.Context) (*flagSnapshot, error) {
	live := a.ofrep.live.Load()
	g := a.ofrep.gen.Load()
	if s := a.ofrep.snap.Load(); live && s != nil && s.gen == g {
		return s, s.err
	}
	a.ofrep.mu.Lock()
	defer a.ofrep.mu.Unlock()
	g = a.ofrep.gen.Load()
	if s := a.ofrep.snap.Load(); live && s != nil && s.gen == g {
		return s, s.err
	}
	s, err := a.compileFlags(ctx)
	if err != nil {
		return nil, err // a failed read is not remembered
	}
	s.gen = g
	a.ofrep.snap.Store(s)
	return s, s.err
}

// compileFlags reads every segment and flag and compiles them by
// environment. A flag that does not compile (a segment deleted under it)
// fails its environment's evaluations with an error naming it.
func (a *API) compileFlags(ctx context.Context) (*flagSnapshot, error) {
	segObjs, err := a.Store.List(ctx, flag.SegmentKindName, nil)
	if err != nil {
		return nil, err
	}
	objs, err := a.Store.List(ctx, flag.KindName, nil)
	if err != nil {
		return nil, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Metadata.Name < objs[j].Metadata.Name })
	segs := map[string]flag.SegmentSpec{}
	segTag := sha256.New()
	for _, o := range segObjs {
		var s flag.SegmentSpec
		if err := o.DecodeSpec(&s); err != nil {
			return nil, err
		}
		segs[o.Metadata.Name] = s
		fmt.Fprintf(segTag, "s%s@%d;", o.Metadata.Name, o.Metadata.Revision)
	}
	segSum := segTag.Sum(nil)
	out := &flagSnapshot{envs: map[string]compiledFlags{}, empty: compiledFlags{tag: hex.EncodeToString(segSum[:12])}}
	tags := map[string][]byte{}
	for _, o := range objs {
		var s flag.Spec
		if err := o.DecodeSpec(&s); err != nil {
			return nil, err
		}
		ev, err := flag.Compile(s, segs)
		if err != nil {
			out.err = fmt.Errorf("flag %s: %w", o.Metadata.Name, err)
			continue
		}
		cf, ok := out.envs[s.Environment]
		if !ok {
			cf = compiledFlags{set: map[string][]*flag.Evaluator{}}
			tags[s.Environment] = append([]byte(nil), segSum...)
		}
		cf.set[s.Key] = append(cf.set[s.Key], ev)
		out.envs[s.Environment] = cf
		// The tag follows the spec, not the revision: a status write (the
		// day a flag was last evaluated) changes no evaluation.
		specSum := sha256.Sum256(o.Spec)
		tags[s.Environment] = fmt.Appendf(tags[s.Environment], "f%s@%x;", o.Metadata.Name, specSum[:8])
	}
	for env, cf := range out.envs {
		sum := sha256.Sum256(tags[env])
		cf.tag = hex.EncodeToString(sum[:12])
		out.envs[env] = cf
	}
	return out, nil
}

// authenticateOFREP authenticates an evaluation request, from the cache
// when the key was seen in this generation less than principalTTL ago.
func (a *API) authenticateOFREP(ctx context.Context, token string) (*auth.Principal, error) {
	a.startOFREPCache()
	now := a.Now()
	key := auth.HashSecret(token)
	g := a.ofrep.gen.Load()
	if v, ok := a.ofrep.principals.Load(key); ok && a.ofrep.live.Load() {
		if cp := v.(cachedPrincipal); cp.gen == g && now.Before(cp.until) {
			return cp.p, nil
		}
	}
	p, err := auth.Authenticate(ctx, a.Store, token, now)
	if err != nil {
		a.ofrep.principals.Delete(key)
		return nil, err
	}
	a.ofrep.principals.Store(key, cachedPrincipal{p: p, gen: g, until: now.Add(principalTTL)})
	return p, nil
}
