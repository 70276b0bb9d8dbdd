package http

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyLimiter is a token bucket per caller key. Buckets unused for
// idleBucket are forgotten, so the map stays as large as the set of active
// callers.
type keyLimiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const idleBucket = 10 * time.Minute

func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	return &keyLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket at now, or says how long until
// one is available.
func (l *keyLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleBucket {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// rateKey names the caller a request is counted against: its credential
// (hashed; the token itself is never kept), else its address.
func rateKey(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		sum := sha256.Sum256([]byte(auth))
		return "cred:" + hex.EncodeToString(sum[:16])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// withRateLimit answers a caller over its rate with 429 and Retry-After.
// Probes, metrics and the payment provider's signed webhook (whose bursts
// come from a few addresses) are not limited.
func (s *Server) withRateLimit(next http.Handler) http.Handler {
	if s.cfg.RateLimit <= 0 {
		return next
	}
	l := newKeyLimiter(s.cfg.RateLimit, s.cfg.RateBurst)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics", "/api/v1/billing/webhook":
			next.ServeHTTP(w, r)
			return
		}
		ok, wait := l.allow(rateKey(r), s.cfg.Clock.Now())
		if !ok {
			s.metrics.rateLimited.Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.writeError(w, r, &Error{Code: CodeRateLimited, Err: fmt.Errorf("rate limited for %s", wait)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
