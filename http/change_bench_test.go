package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/engine/enginetest"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// restBenchStores open a fresh store of each kind; the PostgreSQL one skips
// its benchmarks without GATEHOUSE_TEST_POSTGRES. twin opens another
// handle on the store open made, as a second process would.
var restBenchStores = []struct {
	name string
	open func(b *testing.B) (s gatehouse.Store, twin func() gatehouse.Store)
}{
	{"sqlite", func(b *testing.B) (gatehouse.Store, func() gatehouse.Store) {
		path := filepath.Join(b.TempDir(), "g.db")
		open := func() gatehouse.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open
	}},
	{"postgres", func(b *testing.B) (gatehouse.Store, func() gatehouse.Store) {
		dsn := pgtest.NewSchema(b, pgtest.DSN(b))
		open := func() gatehouse.Store {
			s, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}
		return open(), open
	}},
}

// storeOf is the store of a restBenchStores entry.
func storeOf(s gatehouse.Store, _ func() gatehouse.Store) gatehouse.Store { return s }

// restBench is the admin API on a loopback listener over a store holding
// the engine benchmarks' generated policy.
type restBench struct {
	b    *testing.B
	svc  *service.Service
	ts   *httptest.Server
	tok  string
	user gatehouse.UserEntry
	cfg  enginetest.Config
}

func newRESTBench(b *testing.B, s gatehouse.Store, users int) *restBench {
	b.Helper()
	ctx := context.Background()
	cfg := enginetest.DefaultConfig()
	cfg.Users = users
	p := enginetest.Generate(cfg)
	svc, err := service.Open(ctx, s, service.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Update(ctx, "bench", "policy.apply", func(cur *gatehouse.Policy) error {
		*cur = *p
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	hcfg := testConfig(b)
	if err := hcfg.Validate(); err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(gatehttp.NewServer(svc, hcfg).Handler())
	b.Cleanup(ts.Close)
	// The first users are superusers: the admin; the user changed is past them.
	tok, err := gatehttp.IssueToken(hcfg, "user:"+p.Users[0].Email, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return &restBench{b: b, svc: svc, ts: ts, tok: tok, user: p.Users[cfg.Superusers], cfg: cfg}
}

// send makes one admin request and fails unless it answers 200 or 201.
func (r *restBench) send(method, path, body string) {
	req, err := http.NewRequest(method, r.ts.URL+path, strings.NewReader(body))
	if err != nil {
		r.b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := r.ts.Client().Do(req)
	if err != nil {
		r.b.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusCreated {
		r.b.Fatalf("%s %s = %d %s", method, path, res.StatusCode, got)
	}
}

// run times each call of req over b.Loop and reports p50-ms and p99-ms.
func (r *restBench) run(req func(i int)) {
	var took []time.Duration
	for r.b.Loop() {
		start := time.Now()
		req(len(took))
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	ms := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / 1e6 }
	r.b.ReportMetric(ms(0.5), "p50-ms")
	r.b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkRESTChange is a single-user change through the admin REST API
// over a real loopback listener (httptest), in a store holding the engine
// benchmarks' generated policy with 10,000 and 100,000 users: iterations
// alternate between assigning a role to one user (POST
// /api/v1/users/{id}/roles) and removing it (DELETE
// /api/v1/users/{id}/roles/{name}), each one change and one audit event.
// p50-ms and p99-ms are the client's round trips.
func BenchmarkRESTChange(b *testing.B) {
	for _, st := range restBenchStores {
		for _, users := range enginetest.BenchUsers() {
			b.Run(st.name+"/users="+enginetest.SizeName(users), func(b *testing.B) {
				r := newRESTBench(b, storeOf(st.open(b)), users)
				// A role the user does not hold.
				role := ""
				for i := r.cfg.Roles - 1; i >= 0 && role == ""; i-- {
					if !slices.ContainsFunc(r.user.Roles, func(a gatehouse.Assignment) bool { return a.Role == enginetest.RoleName(i) }) {
						role = enginetest.RoleName(i)
					}
				}
				base := "/api/v1/users/" + url.PathEscape(r.user.Email) + "/roles"
				bind := fmt.Sprintf(`{"role": %q}`, role)
				r.run(func(i int) {
					if i%2 == 0 {
						r.send(http.MethodPost, base, bind)
					} else {
						r.send(http.MethodDelete, base+"/"+url.PathEscape(role), "")
					}
				})
			})
		}
	}
}

// BenchmarkRESTPutUser is the same single-user change made by replacing
// the user's whole entry (PUT /api/v1/users/{id}), alternating between two
// tenant lists.
func BenchmarkRESTPutUser(b *testing.B) {
	for _, st := range restBenchStores {
		for _, users := range enginetest.BenchUsers() {
			b.Run(st.name+"/users="+enginetest.SizeName(users), func(b *testing.B) {
				r := newRESTBench(b, storeOf(st.open(b)), users)
				var bodies [2]string
				for i, tenants := range [2][]string{{enginetest.OrgID(1)}, {enginetest.OrgID(2), enginetest.StoreID(2, 1)}} {
					u := r.user
					u.Tenants = tenants
					body, err := json.Marshal(u)
					if err != nil {
						b.Fatal(err)
					}
					bodies[i] = string(body)
				}
				path := "/api/v1/users/" + url.PathEscape(r.user.Email)
				r.run(func(i int) { r.send(http.MethodPut, path, bodies[i%2]) })
			})
		}
	}
}

// BenchmarkRESTThroughput is many admins changing users at once through
// the admin REST API: 32 clients over loopback, each assigning a role to
// users of its own and removing it again (POST and DELETE
// /api/v1/users/{id}/roles), for GATEHOUSE_BENCH_SECONDS seconds (default
// 5) per iteration, with the largest of enginetest.BenchUsers in the
// store, while a second instance on the same store follows it (Follow). It
// reports the changes committed per second, the round trips' p50 and p99,
// and how long the follower took to reach the writer's version, sampled
// every 20 ms (follow-p50-ms, follow-p99-ms); then it checks that the audit
// trail holds exactly one change event per change and verifies its chain.
// Run it with -benchtime=1x.
func BenchmarkRESTThroughput(b *testing.B) {
	seconds := 5
	if s := os.Getenv("GATEHOUSE_BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 600 {
			b.Fatalf("GATEHOUSE_BENCH_SECONDS=%q: want 1 to 600", s)
		}
		seconds = n
	}
	const clients = 32
	users := slices.Max(enginetest.BenchUsers())
	for _, st := range restBenchStores {
		b.Run(st.name+"/users="+enginetest.SizeName(users), func(b *testing.B) {
			store, twin := st.open(b)
			r := newRESTBench(b, store, users)
			ctx := context.Background()
			head, err := store.AuditHead(ctx)
			if err != nil {
				b.Fatal(err)
			}
			// A role no user holds: every request is one change.
			const role = "bench-throughput"
			r.send(http.MethodPut, "/api/v1/roles/"+role, fmt.Sprintf(`{"name": %q, "permissions": [%q]}`, role, enginetest.PermissionName(0)))
			// A second instance, started with the role: what it follows
			// from then on is changes of users.
			lag := followLag(b, r.svc, twin())
			var (
				mu   sync.Mutex
				took []time.Duration
			)
			for b.Loop() {
				deadline := time.Now().Add(time.Duration(seconds) * time.Second)
				var wg sync.WaitGroup
				for c := range clients {
					wg.Go(func() {
						var mine []time.Duration
						for i := 0; time.Now().Before(deadline); i++ {
							// Users past the superusers, spread over the store.
							u := r.cfg.Superusers + c + clients*(i/2%1000)
							email := enginetest.UserEmail(u)
							base := "/api/v1/users/" + url.PathEscape(email) + "/roles"
							start := time.Now()
							if i%2 == 0 {
								r.send(http.MethodPost, base, fmt.Sprintf(`{"role": %q}`, role))
							} else {
								r.send(http.MethodDelete, base+"/"+url.PathEscape(role), "")
							}
							mine = append(mine, time.Since(start))
						}
						mu.Lock()
						took = append(took, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			lags := lag.stop()
			b.ReportMetric(float64(len(took))/float64(b.N*seconds), "changes/s")
			b.ReportMetric(float64(lags[len(lags)/2])/1e6, "follow-p50-ms")
			b.ReportMetric(float64(lags[len(lags)*99/100])/1e6, "follow-p99-ms")
			slices.Sort(took)
			ms := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / 1e6 }
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.StopTimer()
			changed := 0
			for seq := head.Seq; ; {
				page, err := store.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: seq, TargetPrefix: "user/", Kind: gatehouse.AuditKindChange, Limit: 10_000})
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				changed += len(page)
				seq = page[len(page)-1].Seq
			}
			if changed != len(took) {
				b.Fatalf("%d change events for %d changes", changed, len(took))
			}
			rep, err := audit.Verify(ctx, store)
			if err != nil || rep.Head.Seq == 0 {
				b.Fatalf("audit chain: %+v, %v", rep, err)
			}
		})
	}
}

// lagMeter measures how long a second instance following the store takes
// to reach each version the writer had, sampled every 20 ms.
type lagMeter struct {
	b      *testing.B
	cancel context.CancelFunc
	done   chan error
	sample chan struct{}
	mu     sync.Mutex
	// pending are the sampled versions the follower has not reached yet.
	pending []lagSample
	lags    []time.Duration
	writer  *service.Service
	follows *service.Service
}

type lagSample struct {
	version int64
	at      time.Time
}

// followLag opens a second instance on store, following it (Follow: the
// PostgreSQL notifications, a 100 ms poll on SQLite), and samples writer.
func followLag(b *testing.B, writer *service.Service, store gatehouse.Store) *lagMeter {
	ctx, cancel := context.WithCancel(context.Background())
	follows, err := service.Open(ctx, store, service.Config{})
	if err != nil {
		b.Fatal(err)
	}
	m := &lagMeter{b: b, cancel: cancel, done: make(chan error, 2), writer: writer, follows: follows}
	go func() {
		m.done <- follows.Follow(ctx, 100*time.Millisecond, m.reached, func(err error) { b.Log(err) })
	}()
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				m.done <- nil
				return
			case now := <-t.C:
				v := writer.Snapshot().Version()
				m.mu.Lock()
				if v > follows.Snapshot().Version() {
					m.pending = append(m.pending, lagSample{v, now})
				} else {
					m.lags = append(m.lags, 0)
				}
				m.mu.Unlock()
			}
		}
	}()
	return m
}

// reached records the lag of every sample at or before version.
func (m *lagMeter) reached(version int64) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.pending {
		if s.version <= version {
			m.lags = append(m.lags, now.Sub(s.at))
		} else {
			m.pending[n] = s
			n++
		}
	}
	m.pending = m.pending[:n]
}

// stop waits up to 10 s for the follower to reach the writer's version,
// stops following and returns the lags, sorted.
func (m *lagMeter) stop() []time.Duration {
	final := m.writer.Snapshot().Version()
	for deadline := time.Now().Add(10 * time.Second); m.follows.Snapshot().Version() < final; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			m.b.Fatalf("the follower is at version %d 10 s after the writer reached %d", m.follows.Snapshot().Version(), final)
		}
	}
	m.cancel()
	<-m.done
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) > 0 {
		m.b.Fatalf("%d sampled versions never reached by the follower", len(m.pending))
	}
	slices.Sort(m.lags)
	return m.lags
}
