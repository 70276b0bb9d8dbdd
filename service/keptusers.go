package service

import (
	"iter"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// usersChunk is the most entries a chunk of the kept users holds:
// creating or removing a user moves at most this many entries (160 bytes
// each), where one sorted slice of a million users moves half of them on
// average (17 ms at 1M users, BenchmarkCreateDelete).
const usersChunk = 1024

// keptUsers is the users of the kept policy in email order, in chunks of
// at most size entries, so that a user created or removed costs a chunk,
// not the policy. Every chunk is non-empty, the chunks are in order and
// do not overlap. The caller holds mu.
type keptUsers struct {
	chunks [][]gatehouse.UserEntry
	size   int
	n      int
}

// newKeptUsers returns users, sorted by email, in chunks of at most size
// entries (at least 2). The chunks are full, without spare capacity, so
// that the chunked form takes no more memory than the slice; a chunk
// splits (into halves with room) on the first insertion into it.
func newKeptUsers(users []gatehouse.UserEntry, size int) *keptUsers {
	k := &keptUsers{size: size, n: len(users)}
	for len(users) > 0 {
		n := min(len(users), size)
		chunk := make([]gatehouse.UserEntry, n)
		copy(chunk, users)
		k.chunks = append(k.chunks, chunk)
		users = users[n:]
	}
	return k
}

// find returns the chunk and the index in it of the user with email, or
// where it would be inserted, and whether it is there.
func (k *keptUsers) find(email string) (c, i int, found bool) {
	if len(k.chunks) == 0 {
		return 0, 0, false
	}
	// The first chunk whose last entry is not before email, else the last.
	c, _ = slices.BinarySearchFunc(k.chunks, email, func(chunk []gatehouse.UserEntry, email string) int {
		return strings.Compare(chunk[len(chunk)-1].Email, email)
	})
	c = min(c, len(k.chunks)-1)
	i, found = slices.BinarySearchFunc(k.chunks[c], email, func(u gatehouse.UserEntry, email string) int { return strings.Compare(u.Email, email) })
	return c, i, found
}

// get returns a copy of the user with email, if there is one.
func (k *keptUsers) get(email string) (gatehouse.UserEntry, bool) {
	c, i, found := k.find(email)
	if !found {
		return gatehouse.UserEntry{}, false
	}
	return k.chunks[c][i], true
}

// index returns the position of the user with email in the policy's
// sorted users, or where it would be inserted: for problem paths.
func (k *keptUsers) index(email string) int {
	c, i, _ := k.find(email)
	for _, chunk := range k.chunks[:c] {
		i += len(chunk)
	}
	return i
}

// put replaces the user with u's email by u, or inserts u, and returns
// the entry it replaced.
func (k *keptUsers) put(u gatehouse.UserEntry) (was gatehouse.UserEntry, existed bool) {
	c, i, found := k.find(u.Email)
	if found {
		was, k.chunks[c][i] = k.chunks[c][i], u
		return was, true
	}
	k.n++
	if len(k.chunks) == 0 {
		k.chunks = [][]gatehouse.UserEntry{append(make([]gatehouse.UserEntry, 0, k.size), u)}
		return was, false
	}
	chunk := k.chunks[c]
	if len(chunk) < k.size {
		k.chunks[c] = slices.Insert(chunk, i, u)
		return was, false
	}
	// A full chunk splits in two halves, each with room to grow.
	half := len(chunk) / 2
	right := make([]gatehouse.UserEntry, len(chunk)-half, k.size)
	copy(right, chunk[half:])
	clear(chunk[half:])
	left := chunk[:half]
	if i <= half {
		left = slices.Insert(left, i, u)
	} else {
		right = slices.Insert(right, i-half, u)
	}
	k.chunks[c] = left
	k.chunks = slices.Insert(k.chunks, c+1, right)
	return was, false
}

// remove removes the user with email and returns it, if there is one.
func (k *keptUsers) remove(email string) (was gatehouse.UserEntry, existed bool) {
	c, i, found := k.find(email)
	if !found {
		return was, false
	}
	k.n--
	was = k.chunks[c][i]
	if k.chunks[c] = slices.Delete(k.chunks[c], i, i+1); len(k.chunks[c]) == 0 {
		k.chunks = slices.Delete(k.chunks, c, c+1)
	}
	return was, true
}

// all yields every user in email order; the entries must not be changed.
func (k *keptUsers) all() iter.Seq[*gatehouse.UserEntry] {
	return func(yield func(*gatehouse.UserEntry) bool) {
		for _, chunk := range k.chunks {
			for i := range chunk {
				if !yield(&chunk[i]) {
					return
				}
			}
		}
	}
}

// flat returns the users as one sorted slice.
func (k *keptUsers) flat() []gatehouse.UserEntry {
	users := make([]gatehouse.UserEntry, 0, k.n)
	for _, chunk := range k.chunks {
		users = append(users, chunk...)
	}
	return users
}
