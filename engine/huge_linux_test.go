package engine

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/gatehouse/gatehouse"
)

// mapping is what /proc/self/smaps says of the mapping that holds an
// address: its VmFlags and its AnonHugePages in kB.
type mapping struct {
	flags     []string
	hugePages int
}

func mappingOf(t *testing.T, p unsafe.Pointer) mapping {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	addr := uint64(uintptr(p))
	var m mapping
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				if in {
					break
				}
				in = l <= addr && addr < h
				continue
			}
		}
		if !in {
			continue
		}
		switch fields[0] {
		case "AnonHugePages:":
			m.hugePages, _ = strconv.Atoi(fields[1])
		case "VmFlags:":
			m.flags = fields[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !in {
		t.Fatalf("no mapping holds %#x", addr)
	}
	return m
}

// thpOff reports whether the kernel has transparent huge pages off.
func thpOff() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err != nil || strings.Contains(string(b), "[never]")
}

// TestHugeMake: a large array is advised huge pages (VmFlags hg) and, the
// kernel willing, backed by them once written.
func TestHugeMake(t *testing.T) {
	if thpOff() {
		t.Skip("transparent huge pages are off")
	}
	big := hugeMake[entry](0, 2*hugeMin/int(unsafe.Sizeof(entry{})))
	for i := range cap(big) {
		big = append(big, entry{ref: int32(i)})
	}
	m := mappingOf(t, unsafe.Pointer(&big[len(big)/2]))
	if !slices.Contains(m.flags, "hg") {
		t.Errorf("flags of a %d-byte array = %v, want hg", 2*hugeMin, m.flags)
	}
	if m.hugePages == 0 {
		t.Logf("the kernel backed no huge pages (fragmented memory?): %+v", m)
	}
}

// TestRecordsOnHugePages: Compile puts a large policy's records and email
// slots, those of hugeMin bytes or more, on memory advised huge pages.
func TestRecordsOnHugePages(t *testing.T) {
	if thpOff() {
		t.Skip("transparent huge pages are off")
	}
	p := &gatehouse.Policy{Permissions: []gatehouse.Permission{{Name: "p"}}}
	for i := range 300_000 {
		p.Users = append(p.Users, gatehouse.UserEntry{
			Email:  fmt.Sprintf("user%06d@example.com", i),
			Grants: []gatehouse.Grant{{Permission: "p"}},
		})
	}
	s, err := Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name string
		at   unsafe.Pointer
		size uintptr
	}{
		{"records", unsafe.Pointer(&s.records[len(s.records)/2]), uintptr(cap(s.records)) * unsafe.Sizeof(entry{})},
		{"email slots", unsafe.Pointer(s.emails.slots.at(s.emails.slots.len() / 2)), uintptr(s.emails.slots.len()) * unsafe.Sizeof(emailSlot{})},
	} {
		if a.size < hugeMin {
			t.Fatalf("%s: %d bytes, under hugeMin: the test's policy is too small", a.name, a.size)
		}
		if m := mappingOf(t, a.at); !slices.Contains(m.flags, "hg") {
			t.Errorf("%s: flags %v, want hg", a.name, m.flags)
		}
	}
}
