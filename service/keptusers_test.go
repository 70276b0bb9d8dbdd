package service

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestKeptUsersModel runs random insertions, replacements and removals on
// keptUsers of small chunk sizes, so that chunks split and empty, and
// checks each step against one sorted slice.
func TestKeptUsersModel(t *testing.T) {
	t.Parallel()
	for _, size := range []int{2, 3, 4, 16, usersChunk} {
		for _, start := range []int{0, 1, 7, 100} {
			t.Run(fmt.Sprintf("size=%d/start=%d", size, start), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(uint64(size), uint64(start)))
				email := func() string { return fmt.Sprintf("u%03d@example.com", rng.IntN(150)) }
				var model []gatehouse.UserEntry
				for i := range start {
					model = append(model, gatehouse.UserEntry{Email: fmt.Sprintf("u%03d@example.com", i*150/max(start, 1))})
				}
				model = slices.CompactFunc(model, func(a, b gatehouse.UserEntry) bool { return a.Email == b.Email })
				k := newKeptUsers(slices.Clone(model), size)
				find := func(email string) (int, bool) {
					return slices.BinarySearchFunc(model, email, func(u gatehouse.UserEntry, e string) int { return strings.Compare(u.Email, e) })
				}
				for step := range 2000 {
					e := email()
					at, found := find(e)
					switch rng.IntN(3) {
					case 0, 1:
						u := gatehouse.UserEntry{Email: e, Name: fmt.Sprint(step)}
						was, existed := k.put(u)
						if existed != found || found && was.Name != model[at].Name {
							t.Fatalf("step %d: put %s replaced %+v (%v), want %v", step, e, was, existed, found)
						}
						if found {
							model[at] = u
						} else {
							model = slices.Insert(model, at, u)
						}
					case 2:
						was, existed := k.remove(e)
						if existed != found || found && was.Name != model[at].Name {
							t.Fatalf("step %d: remove %s gave %+v (%v), want %v", step, e, was, existed, found)
						}
						if found {
							model = slices.Delete(model, at, at+1)
						}
					}
					probe := email()
					at, found = find(probe)
					if u, ok := k.get(probe); ok != found || found && !reflect.DeepEqual(u, model[at]) {
						t.Fatalf("step %d: get %s = %+v, %v; want %v", step, probe, u, ok, found)
					}
					if got := k.index(probe); got != at {
						t.Fatalf("step %d: index %s = %d, want %d", step, probe, got, at)
					}
					checkChunks(t, k, size, len(model))
				}
				if got := k.flat(); !reflect.DeepEqual(got, model) {
					t.Fatalf("flat: %d users, want %d", len(got), len(model))
				}
				var all []gatehouse.UserEntry
				for u := range k.all() {
					all = append(all, *u)
				}
				if !reflect.DeepEqual(all, model) {
					t.Fatalf("all: %d users, want %d", len(all), len(model))
				}
			})
		}
	}
}

// checkChunks fails unless k's chunks are non-empty, at most size long
// and in strict email order, n users in all.
func checkChunks(t *testing.T, k *keptUsers, size, n int) {
	t.Helper()
	total, last := 0, ""
	for c, chunk := range k.chunks {
		if len(chunk) == 0 || len(chunk) > size {
			t.Fatalf("chunk %d holds %d users (at most %d, none empty)", c, len(chunk), size)
		}
		for _, u := range chunk {
			if u.Email <= last {
				t.Fatalf("chunk %d: %s after %s", c, u.Email, last)
			}
			last = u.Email
		}
		total += len(chunk)
	}
	if total != n || k.n != n {
		t.Fatalf("%d users in chunks, n = %d, want %d", total, k.n, n)
	}
}

// TestKeptUsersForms checks that the kept policy's users read the same in
// either form and that each form converts to the other losslessly.
func TestKeptUsersForms(t *testing.T) {
	t.Parallel()
	users := []gatehouse.UserEntry{{Email: "a@example.com"}, {Email: "b@example.com", Superuser: true}, {Email: "c@example.com"}}
	cur := &versioned{kept: &gatehouse.Policy{Users: slices.Clone(users)}}
	collect := func() []gatehouse.UserEntry {
		var got []gatehouse.UserEntry
		for u := range cur.allUsers() {
			got = append(got, *u)
		}
		return got
	}
	if got := collect(); !reflect.DeepEqual(got, users) {
		t.Fatalf("allUsers of the flat form: %+v", got)
	}
	list := cur.userList()
	if cur.kept.Users != nil || list.n != 3 {
		t.Fatalf("userList left %d flat users and holds %d", len(cur.kept.Users), list.n)
	}
	list.put(gatehouse.UserEntry{Email: "ab@example.com"})
	list.remove("c@example.com")
	want := []gatehouse.UserEntry{users[0], {Email: "ab@example.com"}, users[1]}
	if got := collect(); !reflect.DeepEqual(got, want) {
		t.Fatalf("allUsers of the chunked form: %+v", got)
	}
	if got := cur.policy().Users; !reflect.DeepEqual(got, want) || cur.users != nil {
		t.Fatalf("policy: users %+v, chunked form kept: %v", got, cur.users != nil)
	}
}
