package engine

import "slices"

// userPlaces puts the records of a compiled snapshot's users where a
// perfect hash of their emails says, so that a cold Check reads the
// user's record at an address it computes from the email's hash: one
// dependent read from memory instead of two, the email table's slot and
// then the record. The records start Snapshot.records, stride units each,
// one per place (a few places stay empty); a user whose record is longer,
// a user the hash could not place, and every agent have theirs after
// them, and the email table finds every user as before. Derive writes a
// changed user's record after them too and leaves the old one in its
// place, unchanged for the snapshots that share it: a derived snapshot
// takes a placed record only where it has not marked it moved.
//
// The hash is hash-and-displace: the email's hash picks a bucket of about
// placeBucket users, and the bucket's pivot, chosen at Compile, where in
// the places each of its users goes. The pivots take a byte per bucket,
// small enough to stay in the cache while the records do not.
type userPlaces struct {
	pivots []uint8
	// places is the number of places; stride is 0 when Compile placed no
	// users.
	places uint64
	stride int32
	// moved has a bit for each place, set where a derivation gave the
	// user there a record elsewhere and left the old one in place. Check
	// reads it beside the record, as its address too follows from the
	// hash, where recOff would be one more read after it.
	moved paged[uint64]
}

// Sizes of the perfect hash: users per bucket, and places per user in
// 1/placeSlack more than one.
const (
	placeBucket = 3
	placeSlack  = 16
	// maxStride bounds a place: a record longer than that is not placed.
	maxStride = 32
	// pivotKey spreads a pivot over the hash's bits.
	pivotKey = 0x9e3779b97f4a7c15
)

// placeUsers is whether Compile places users' records; tests turn it off
// to compare the two layouts.
var placeUsers = true

// lookup returns the offset in Snapshot.records of the record at the
// place of the user whose email hashes to h, and whether a derivation
// moved that user's record away (userPlaces.moved). The record there is
// that user's only if the email is a placed user's: the caller compares
// the email.
func (u *userPlaces) lookup(h uint64) (off int32, moved bool) {
	b := (h >> 32) * uint64(len(u.pivots)) >> 32
	p := int32(placeOf(h, u.pivots[b], u.places))
	return p * u.stride, *u.moved.at(p >> 6)&(1<<(p&63)) != 0
}

// move marks the place of the record at off moved, if it is a place;
// owned is as for paged.put.
func (u *userPlaces) move(off int32, owned map[int32]bool) {
	if u.stride == 0 || off >= int32(u.places)*u.stride {
		return
	}
	p := off / u.stride
	u.moved.put(p>>6, *u.moved.at(p >> 6)|1<<(p&63), owned)
}

// placeOf is the place among places of the email hashing to h when its
// bucket's pivot is d.
func placeOf(h uint64, d uint8, places uint64) uint64 {
	return uint64(uint32(mix(h, (uint64(d)+1)*pivotKey))) * places >> 32
}

// recordLen is the number of units of the record at off in records.
func recordLen(records []entry, off int32) int32 {
	r := records[off:]
	return recEmail + (r[recFlags].ref>>recLenShift+7)/8 + r[recSubject].tenant
}

// place lays out the records of the compiled snapshot's users by a
// perfect hash of their emails (userPlaces) and points c.recOff and the
// email table at where they went. The first users subjects are the users.
// It reads the records as they lie, in subject order.
func (c *compiler) place(users int) {
	s := c.s
	old := s.records
	lens := make([]int32, len(c.recOff))
	for i, off := range c.recOff {
		lens[i] = recordLen(old, off)
	}
	stride := placeStride(lens[:users])
	// Offsets are int32: the places and the records after them must fit.
	places := uint64(users) + uint64(users)/placeSlack + 1
	if !placeUsers || stride == 0 || places*uint64(stride)+uint64(len(old)) >= 1<<31 {
		return
	}
	var fit []int32
	for i, n := range lens[:users] {
		if n <= stride {
			fit = append(fit, int32(i))
		}
	}
	u := userPlaces{
		pivots: make([]uint8, len(fit)/placeBucket+1),
		places: uint64(len(fit) + len(fit)/placeSlack + 1),
		stride: stride,
	}
	// where is each subject's place, -1 for none.
	where := make([]int32, len(c.recOff))
	for i := range where {
		where[i] = -1
	}
	rest := len(old)
	for p, i := range u.assign(c, fit) {
		if i >= 0 {
			where[i] = int32(p)
			rest -= int(lens[i])
		}
	}
	region := int(u.places) * int(stride)
	s.records = hugeMake[entry](region, region+rest+cap(old)-len(old))
	for i, off := range c.recOff {
		rec := old[off : off+lens[i]]
		if p := where[i]; p >= 0 {
			c.recOff[i] = p * stride
			copy(s.records[c.recOff[i]:], rec)
		} else {
			c.recOff[i] = int32(len(s.records))
			s.records = append(s.records, rec...)
		}
	}
	for pg := range s.emails.slots.pages {
		page := s.emails.slots.pages[pg]
		for k := range page {
			if sl := &page[k]; sl.rec != 0 {
				sl.rec = c.recOff[old[sl.rec-1+recSubject].ref] + 1
			}
		}
	}
	u.moved = pagedOf(make([]uint64, (u.places+63)/64))
	s.places = u
}

// placeStride is the units per place: the fewest whole cache lines (eight
// units) that hold the records of nine in ten users, at most maxStride;
// 0, placing none, when fewer than half of the users' records are that
// short.
func placeStride(lens []int32) int32 {
	if len(lens) == 0 {
		return 0
	}
	// count[l] is the number of records of l cache lines; longer ones
	// than maxStride count as one more.
	var count [maxStride/8 + 2]int
	for _, n := range lens {
		count[min((n+7)/8, maxStride/8+1)]++
	}
	short := 0
	for lines := 1; lines <= maxStride/8; lines++ {
		short += count[lines]
		if short*10 >= len(lens)*9 || lines == maxStride/8 && short*2 >= len(lens) {
			return int32(lines * 8)
		}
	}
	return 0
}

// assign chooses the pivots of u for the users fit, biggest buckets first,
// and returns the user at each place, -1 for none. A bucket no pivot
// places keeps pivot 0 and its users unplaced.
func (u *userPlaces) assign(c *compiler, fit []int32) []int32 {
	hashes := make([]uint64, len(fit))
	nb := uint64(len(u.pivots))
	start := make([]int32, nb+1)
	for k, i := range fit {
		hashes[k] = foldHash(c.subjects[i].ref.ID)
		start[(hashes[k]>>32)*nb>>32+1]++
	}
	for b := range nb {
		start[b+1] += start[b]
	}
	members := make([]int32, len(fit))
	next := slices.Clone(start[:nb])
	for k, h := range hashes {
		b := (h >> 32) * nb >> 32
		members[next[b]] = int32(k)
		next[b]++
	}
	order := make([]int32, nb)
	for b := range order {
		order[b] = int32(b)
	}
	size := func(b int32) int32 { return start[b+1] - start[b] }
	slices.SortStableFunc(order, func(a, b int32) int { return int(size(b) - size(a)) })
	at := make([]int32, u.places)
	for p := range at {
		at[p] = -1
	}
	var pos []uint64
	for _, b := range order {
		bucket := members[start[b]:start[b+1]]
		if len(bucket) == 0 {
			break
		}
		for d := 0; d <= 0xff; d++ {
			pos = pos[:0]
			for _, k := range bucket {
				p := placeOf(hashes[k], uint8(d), u.places)
				if at[p] >= 0 || slices.Contains(pos, p) {
					break
				}
				pos = append(pos, p)
			}
			if len(pos) == len(bucket) {
				for j, k := range bucket {
					at[pos[j]] = fit[k]
				}
				u.pivots[b] = uint8(d)
				break
			}
		}
	}
	return at
}
