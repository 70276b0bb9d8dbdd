package http

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// The limiter tracks at most its size of keys: a flood of new keys evicts
// the least recently used, and a key still in use keeps its bucket.
func TestKeyLimiterBounded(t *testing.T) {
	t.Parallel()
	l := newKeyLimiter(0.001, 1, 100)
	now := time.Unix(1_800_000_000, 0)
	if ok, _ := l.allow("busy", now); !ok {
		t.Fatal("first request of busy refused")
	}
	for i := range 10_000 {
		l.allow(fmt.Sprintf("flood-%d", i), now)
		if i%50 == 0 {
			l.allow("busy", now) // keeps busy recently used
		}
	}
	if n := l.buckets.Len(); n > 100 {
		t.Errorf("%d buckets, want at most 100", n)
	}
	if ok, wait := l.allow("busy", now); ok || wait <= 0 {
		t.Errorf("busy after the flood: allowed %v, wait %v; its empty bucket was forgotten", ok, wait)
	}
	if wait := l.wait("never-seen", now); wait != 0 {
		t.Errorf("wait of an unknown key = %v", wait)
	}
}

func TestAddrKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
	} {
		if got := addrKey(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("addrKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
