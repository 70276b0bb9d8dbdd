package engine_test

import (
	"flag"
	"regexp"
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

// scaleRounds is how many times BenchmarkScale decides each size's
// requests, the sizes taking turns, so that load from other processes on
// the machine falls on both alike: compare the fastest round of each.
const scaleRounds = 5

// BenchmarkScale compiles a generated policy of 10k and of 1M users once
// each, reporting the compile time (compile-s) and the heap in use after a
// garbage collection with the policy and the snapshot held (heap-MB) and
// with only the snapshot held (snapshot-heap-MB); then it decides cold
// requests spread over all users and hot ones, so Check at 1M users can be
// compared with Check at 10k, in scaleRounds rounds that alternate between
// the sizes. It runs only when the -bench pattern names it (not with
// -bench . as scripts/bench runs): the 1M policy takes about 2 GB and half
// a minute or more to generate and compile.
func BenchmarkScale(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Scale") {
		b.Skip("generates a 1M-user policy: run with -bench BenchmarkScale")
	}
	type compiled struct {
		name                 string
		snap                 *engine.Snapshot
		reqs                 []gatehouse.Request
		compile              time.Duration
		withPolicy, snapOnly runtime.MemStats
	}
	var sizes []*compiled
	for _, size := range []struct {
		name  string
		users int
	}{{"users=10k", 10_000}, {"users=1M", 1_000_000}} {
		if !matchesBench(size.name) {
			continue
		}
		c := &compiled{name: size.name}
		p := enginetest.Generate(scaleConfig(size.users))
		c.reqs = enginetest.Requests(p, 2, benchRequests)
		// A request's email would share the policy's string, scattered
		// over the 1M users' strings; a server decides a request it just
		// parsed. Copy the emails so that the requests lie alike at both
		// sizes and only the snapshot differs.
		for i := range c.reqs {
			c.reqs[i].Subject.ID = strings.Clone(c.reqs[i].Subject.ID)
		}
		runtime.GC()
		start := time.Now()
		s, err := engine.Compile(p, 1)
		c.compile = time.Since(start)
		if err != nil {
			b.Fatalf("%s: compile: %v", size.name, err)
		}
		runtime.GC()
		runtime.ReadMemStats(&c.withPolicy)
		runtime.KeepAlive(p)
		p = nil
		runtime.GC()
		runtime.ReadMemStats(&c.snapOnly)
		allowed := 0
		for i := range c.reqs {
			if s.Check(&c.reqs[i]).Allowed {
				allowed++
			}
		}
		if allowed == 0 || allowed == len(c.reqs) {
			b.Fatalf("%s: request mix: %d of %d allowed; want both outcomes", size.name, allowed, len(c.reqs))
		}
		c.snap = s
		sizes = append(sizes, c)
	}
	for range scaleRounds {
		for _, c := range sizes {
			for _, mix := range []struct {
				name string
				reqs []gatehouse.Request
			}{{"check/cold", c.reqs}, {"check/hot", c.reqs[:hotRequests]}} {
				b.Run(c.name+"/"+mix.name, func(b *testing.B) {
					b.ReportAllocs()
					// On one OS thread, so that its CPU time is the loop's.
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					s, rs := c.snap, mix.reqs
					i := 0
					var cpu time.Duration
					for b.Loop() {
						if cpu == 0 {
							cpu = threadCPU()
						}
						s.Check(&rs[i])
						if i++; i == len(rs) {
							i = 0
						}
					}
					cpu = threadCPU() - cpu
					// After the loop: b.Loop's first call resets the timer,
					// which drops metrics reported before it.
					if cpu > 0 {
						b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
					}
					b.ReportMetric(c.compile.Seconds(), "compile-s")
					b.ReportMetric(float64(c.withPolicy.HeapInuse)/1e6, "heap-MB")
					b.ReportMetric(float64(c.snapOnly.HeapInuse)/1e6, "snapshot-heap-MB")
				})
			}
		}
	}
}

// matchesBench reports whether the -bench pattern can select a
// sub-benchmark of BenchmarkScale named name ("users=10k"): the sizes not
// named are neither generated nor compiled.
func matchesBench(name string) bool {
	pattern := flag.Lookup("test.bench").Value.String()
	parts := strings.Split(pattern, "/")
	if len(parts) < 2 {
		return true
	}
	ok, err := regexp.MatchString(parts[1], name)
	return err != nil || ok
}
