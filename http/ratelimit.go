package http

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse"
)

// DefaultRateBuckets bounds how many callers and addresses the rate
// limiter tracks at once (Config.RateBuckets).
const DefaultRateBuckets = 100_000

// keyLimiter is a token bucket per key, at most size of them: the least
// recently used bucket is forgotten first, so a flood of new keys costs
// bounded memory. A forgotten bucket was either idle (and full again) or
// belongs to a key not seen since the newest size keys.
type keyLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
}

func newKeyLimiter(perSecond float64, burst, size int) *keyLimiter {
	c, err := lru.New[string, *rate.Limiter](max(size, 1))
	if err != nil { // only for a size below 1
		panic(err)
	}
	return &keyLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: c}
}

// bucket returns key's bucket, creating it.
func (l *keyLimiter) bucket(key string) *rate.Limiter {
	if b, ok := l.buckets.Get(key); ok {
		return b
	}
	b := rate.NewLimiter(l.limit, l.burst)
	if prev, ok, _ := l.buckets.PeekOrAdd(key, b); ok {
		return prev
	}
	return b
}

// allow takes one token from key's bucket at now, or says how long until
// one is available.
func (l *keyLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	res := l.bucket(key).ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// wait says how long until key's bucket has a token at now: zero when it
// has one or key has no bucket. It takes nothing.
func (l *keyLimiter) wait(key string, now time.Time) time.Duration {
	b, ok := l.buckets.Peek(key)
	if !ok {
		return 0
	}
	if missing := 1 - b.TokensAt(now); missing > 0 {
		return time.Duration(missing / float64(l.limit) * float64(time.Second))
	}
	return 0
}

// limiter counts requests twice over. Before a credential is verified, per
// client address: a request without a credential, and every credential
// that fails verification, takes a token from its address's bucket, and
// an address with an empty bucket is refused before its credential is
// looked at, so garbage tokens never reach the verifier faster than the
// limit. Once verified, per identity: every request of a subject takes a
// token from the subject's bucket, however its credential is spelled
// (scheme case, spaces, another token of the same subject).
type limiter struct {
	addrs, callers *keyLimiter
}

func newLimiter(c Config) *limiter {
	size := c.RateBuckets
	if size <= 0 {
		size = DefaultRateBuckets
	}
	return &limiter{
		addrs:   newKeyLimiter(c.RateLimit, c.RateBurst, size),
		callers: newKeyLimiter(c.RateLimit, c.RateBurst, size),
	}
}

// addrKey names the client address a request is counted against before
// verification: the address itself, or for IPv6 its /64, which one host
// usually holds whole.
func addrKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.Unmap().String()
}

// rateLimited is the 429 of a caller over its limit, with Retry-After.
func (s *Server) rateLimited(who string, wait time.Duration) error {
	s.metrics.rateLimited.Inc()
	return &Error{Code: CodeRateLimited, RetryAfter: wait, Err: fmt.Errorf("%s rate limited for %s", who, wait)}
}

// admit counts a verified caller's request against its identity.
func (s *Server) admit(r *http.Request, c gatehouse.Caller) error {
	if s.limits == nil {
		return nil
	}
	key := "sub:" + c.Subject.String()
	if c.Subject.ID == "" { // a shared AuthZEN token or an open PDP: the address
		key = "addr:" + addrKey(info(r.Context()).remote)
	}
	if ok, wait := s.limits.callers.allow(key, s.cfg.Clock.Now()); !ok {
		return s.rateLimited(key, wait)
	}
	return nil
}

// failed counts a credential that did not verify against its address; a
// request without one was counted on arrival (withRateLimit).
func (s *Server) failed(r *http.Request) {
	if s.limits != nil && r.Header.Get("Authorization") != "" {
		s.limits.addrs.allow(addrKey(info(r.Context()).remote), s.cfg.Clock.Now())
	}
}

// withRateLimit refuses, before any credential is verified, a request from
// an address whose failed or unauthenticated attempts are over the limit,
// and counts a request without a credential against its address; verified
// callers are counted by admit. Probes, metrics and the payment provider's
// signed webhook (whose bursts come from a few addresses) are not limited.
func (s *Server) withRateLimit(next http.Handler) http.Handler {
	if s.limits == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics", "/api/v1/billing/webhook":
			next.ServeHTTP(w, r)
			return
		}
		addr, now := addrKey(info(r.Context()).remote), s.cfg.Clock.Now()
		if r.Header.Get("Authorization") == "" && r.URL.Query().Get("token") == "" {
			if ok, wait := s.limits.addrs.allow(addr, now); !ok {
				s.writeError(w, r, s.rateLimited("addr:"+addr, wait))
				return
			}
		} else if wait := s.limits.addrs.wait(addr, now); wait > 0 {
			s.writeError(w, r, s.rateLimited("addr:"+addr, wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}
