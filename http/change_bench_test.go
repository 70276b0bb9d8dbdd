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
// its benchmarks without GATEHOUSE_TEST_POSTGRES.
var restBenchStores = []struct {
	name string
	open func(b *testing.B) gatehouse.Store
}{
	{"sqlite", func(b *testing.B) gatehouse.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "g.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(b *testing.B) gatehouse.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewSchema(b, pgtest.DSN(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

// restBench is the admin API on a loopback listener over a store holding
// the engine benchmarks' generated policy.
type restBench struct {
	b    *testing.B
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
	return &restBench{b: b, ts: ts, tok: tok, user: p.Users[cfg.Superusers], cfg: cfg}
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
		for _, users := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/users=%dk", st.name, users/1000), func(b *testing.B) {
				r := newRESTBench(b, st.open(b), users)
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
		for _, users := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/users=%dk", st.name, users/1000), func(b *testing.B) {
				r := newRESTBench(b, st.open(b), users)
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
// 5) per iteration, with 100,000 users in the store. It reports the changes
// committed per second and the round trips' p50 and p99, then checks that
// the audit trail holds exactly one change event per change and verifies
// its chain. Run it with -benchtime=1x.
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
	for _, st := range restBenchStores {
		b.Run(st.name+"/users=100k", func(b *testing.B) {
			store := st.open(b)
			r := newRESTBench(b, store, 100_000)
			ctx := context.Background()
			head, err := store.AuditHead(ctx)
			if err != nil {
				b.Fatal(err)
			}
			// A role no user holds: every request is one change.
			const role = "bench-throughput"
			r.send(http.MethodPut, "/api/v1/roles/"+role, fmt.Sprintf(`{"name": %q, "permissions": [%q]}`, role, enginetest.PermissionName(0)))
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
			b.ReportMetric(float64(len(took))/float64(b.N*seconds), "changes/s")
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
