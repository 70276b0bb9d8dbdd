package engine_test

import (
	"flag"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// scaleConfig is the issue 19 shape (10 grants per user, 10k tenants) at
// the given number of users; only the number of users differs between the
// sizes BenchmarkScale compares.
func scaleConfig(users int) enginetest.Config {
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Grants, cfg.Tenants = users, 10, 10_000
	return cfg
}

// BenchmarkScale compiles a generated policy of 10k and of 1M users once
// each, reporting the compile time (compile-s) and the heap in use after a
// garbage collection with the policy and the snapshot held (heap-MB) and
// with only the snapshot held (snapshot-heap-MB); then it decides cold
// requests spread over all users and hot ones, so Check at 1M users can be
// compared with Check at 10k. It runs only when the -bench pattern names
// it (not with -bench . as scripts/bench runs): the 1M policy takes about
// 3 GB and a minute or more to generate and compile.
func BenchmarkScale(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Scale") {
		b.Skip("generates a 1M-user policy: run with -bench BenchmarkScale")
	}
	for _, size := range []struct {
		name  string
		users int
	}{{"users=10k", 10_000}, {"users=1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			p := enginetest.Generate(scaleConfig(size.users))
			reqs := enginetest.Requests(p, 2, benchRequests)
			// A request's email would share the policy's string, scattered
			// over the 1M users' strings; a server decides a request it just
			// parsed. Copy the emails so that the requests lie alike at
			// both sizes and only the snapshot differs.
			for i := range reqs {
				reqs[i].Subject.ID = strings.Clone(reqs[i].Subject.ID)
			}
			runtime.GC()
			start := time.Now()
			s, err := engine.Compile(p, 1)
			compile := time.Since(start)
			if err != nil {
				b.Fatalf("compile: %v", err)
			}
			var withPolicy, snapOnly runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&withPolicy)
			runtime.KeepAlive(p)
			p = nil
			runtime.GC()
			runtime.ReadMemStats(&snapOnly)
			allowed := 0
			for i := range reqs {
				if s.Check(&reqs[i]).Allowed {
					allowed++
				}
			}
			if allowed == 0 || allowed == len(reqs) {
				b.Fatalf("request mix: %d of %d allowed; want both outcomes", allowed, len(reqs))
			}
			for _, mix := range []struct {
				name string
				reqs []gatehouse.Request
			}{{"check/cold", reqs}, {"check/hot", reqs[:hotRequests]}} {
				b.Run(mix.name, func(b *testing.B) {
					b.ReportAllocs()
					rs := mix.reqs
					i := 0
					for b.Loop() {
						s.Check(&rs[i])
						if i++; i == len(rs) {
							i = 0
						}
					}
					// After the loop: b.Loop's first call resets the timer,
					// which drops metrics reported before it.
					b.ReportMetric(compile.Seconds(), "compile-s")
					b.ReportMetric(float64(withPolicy.HeapInuse)/1e6, "heap-MB")
					b.ReportMetric(float64(snapOnly.HeapInuse)/1e6, "snapshot-heap-MB")
				})
			}
			runtime.KeepAlive(s)
		})
	}
}
