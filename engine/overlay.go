package engine

import (
	"sync"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Subject states (subjectHot.state). A compiled snapshot's subjects are all
// live; a derivation (Derive) marks the ones it removes, and the users
// whose aliases it changes, whose entries in the compiled snapshot's email
// table and maps (aliasIdx, agentIdx) then no longer say where their ids
// lead: the snapshot's overlay does. The state is in the subject's record
// (recFlags), which a lookup reads anyway.
const (
	live uint8 = iota
	// renamed: a user whose aliases a derivation set; the overlay's
	// aliases hold every alias it has.
	renamed
	// removed: a subject that is no longer in the policy.
	removed
)

// maxStackID is the longest id lower-cased on the stack.
const maxStackID = 128

// overlayShards is the number of shards of an overlay map: a derivation
// copies only the shards it changes.
const overlayShards = 64

// overlay is what derivations changed in the ids of a lineage's compiled
// snapshot: the subjects they added, found by email or agent id, and the
// aliases of the users whose aliases they set. A snapshot's overlay never
// changes; a derivation that changes ids copies it, and then only the
// shards it changes.
type overlay struct {
	// emails are the users derivations added, by canonical email.
	emails shardedMap[string, int32]
	// agents are the agents derivations added, by id.
	agents shardedMap[string, int32]
	// aliases are the aliases of renamed and added users.
	aliases shardedMap[string, int32]
	// aliasesOf lists each such user's distinct aliases, by index.
	aliasesOf shardedMap[int32, []string]
	// folded are the aliases among aliases whose NormalizeEmail form
	// differs from them, by that form: an added user's email must be no
	// other user's alias, compared as emails are.
	folded shardedMap[string, []string]
	// n counts the entries of all the maps.
	n int
}

// maxOverlay bounds the overlay's entries before Derive asks for a full
// Compile, which needs none.
func maxOverlay(subjects int32) int { return 4096 + int(subjects)/8 }

// shardedMap is a map cut into overlayShards maps, shared between
// snapshots shard by shard.
type shardedMap[K comparable, V any] struct {
	shards *[overlayShards]map[K]V
}

func (m shardedMap[K, V]) get(sh uint32, k K) (V, bool) {
	var v V
	if m.shards == nil {
		return v, false
	}
	v, ok := m.shards[sh%overlayShards][k]
	return v, ok
}

// mapEdit changes a copy of a shardedMap, copying each shard once.
type mapEdit[K comparable, V any] struct {
	m     *shardedMap[K, V]
	n     *int
	owned uint64
}

func (e *mapEdit[K, V]) shard(sh uint32) map[K]V {
	sh %= overlayShards
	if e.owned == 0 {
		var shards [overlayShards]map[K]V
		if e.m.shards != nil {
			shards = *e.m.shards
		}
		e.m.shards = &shards
	}
	if e.owned&(1<<sh) == 0 {
		old := e.m.shards[sh]
		cp := make(map[K]V, len(old)+1)
		for k, v := range old {
			cp[k] = v
		}
		e.m.shards[sh] = cp
		e.owned |= 1 << sh
	}
	return e.m.shards[sh]
}

func (e *mapEdit[K, V]) set(sh uint32, k K, v V) {
	m := e.shard(sh)
	if _, had := m[k]; !had {
		*e.n++
	}
	m[k] = v
}

func (e *mapEdit[K, V]) del(sh uint32, k K) {
	if _, had := e.m.get(sh, k); !had {
		return
	}
	delete(e.shard(sh), k)
	*e.n--
}

// foldShard is the shard of an id: FNV-1a over its bytes with ASCII
// letters lower-cased, so an email's shard does not depend on its case.
func foldShard(id string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// lookupDerivedUser is lookupTrimmedUser for a snapshot with an overlay.
func (s *Snapshot) lookupDerivedUser(id string) (user, rec int32, ok bool) {
	if i, rec, ok := s.emailOwner(id); ok {
		return i, rec, true
	}
	if i, ok := s.aliasOwner(id); ok {
		return i, *s.recOff.at(i), true
	}
	return 0, 0, false
}

// lookupAgent finds an agent by a trimmed id.
func (s *Snapshot) lookupAgent(id string) (int32, bool) {
	i, ok := s.agentIdx[id]
	if s.over == nil || ok && s.stateAt(i) == live {
		return i, ok
	}
	return s.over.agents.get(foldShard(id), id)
}

// emailOwner finds the user whose email a trimmed id is,
// case-insensitively, without allocating for an ASCII id, and the offset
// of its record. The email table's slot leads to a compiled user's record,
// whose state says whether the user is still there; the overlay has the
// users derivations added.
func (s *Snapshot) emailOwner(id string) (user, rec int32, ok bool) {
	if i, rec, ok := s.lookupEmail(id); ok && s.recState(rec) != removed {
		return i, rec, true
	}
	if s.over == nil || s.over.emails.shards == nil {
		return 0, 0, false
	}
	sh := foldShard(id)
	upper := false
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= utf8.RuneSelf || len(id) > maxStackID {
			return s.addedUser(s.over.emails.get(sh, gatehouse.NormalizeEmail(id)))
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return s.addedUser(s.over.emails.get(sh, id))
	}
	var buf [maxStackID]byte
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	// The compiler does not allocate for a map index by string(bytes).
	i, ok := s.over.emails.shards[sh%overlayShards][string(buf[:len(id)])]
	return s.addedUser(i, ok)
}

// addedUser returns user i, if found, with the offset of its record.
func (s *Snapshot) addedUser(i int32, found bool) (user, rec int32, ok bool) {
	if !found {
		return 0, 0, false
	}
	return i, *s.recOff.at(i), true
}

// aliasOwner finds the user with alias a, compared exactly.
func (s *Snapshot) aliasOwner(a string) (int32, bool) {
	i, ok := s.aliasIdx[a]
	if s.over == nil || ok && s.stateAt(i) == live {
		return i, ok
	}
	// A renamed user that kept a has it in the overlay.
	return s.over.aliases.get(foldShard(a), a)
}

// baseFolded is the lineage's index of its compiled aliases whose
// NormalizeEmail form differs from them, by that form; built on first use.
type baseFolded struct {
	once sync.Once
	m    map[string][]string
}

// foldedAliases returns the aliases of s that an email equal to
// NormalizeEmail(email) would collide with although they differ from it:
// compiled ones (they may have moved or gone since) and derived ones.
func (s *Snapshot) foldedAliases(email string) []string {
	f := &s.lineage.folded
	f.once.Do(func() {
		f.m = map[string][]string{}
		for a := range s.aliasIdx {
			if n := gatehouse.NormalizeEmail(a); n != a {
				f.m[n] = append(f.m[n], a)
			}
		}
	})
	out := f.m[email]
	if s.over != nil {
		derived, _ := s.over.folded.get(foldShard(email), email)
		out = append(out[:len(out):len(out)], derived...)
	}
	return out
}
