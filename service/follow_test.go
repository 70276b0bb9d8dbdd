package service_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
)

// instance is one Gatehouse process: a store connection and a service.
type instance struct {
	store gatehouse.Store
	svc   *service.Service
}

// pair opens two instances on one database and starts the first following
// the second's changes.
func pair(t testing.TB, open func() gatehouse.Store) (follower, writer instance) {
	t.Helper()
	ctx := context.Background()
	for _, in := range []*instance{&writer, &follower} {
		in.store = open()
		t.Cleanup(func() { in.store.Close() })
		svc, err := service.Open(ctx, in.store, service.Config{})
		if err != nil {
			t.Fatal(err)
		}
		in.svc = svc
		if in == &writer {
			applyTo(t, svc, basePolicy)
		}
	}
	followCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- follower.svc.Follow(followCtx, 10*time.Millisecond, nil, func(err error) { t.Log(err) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Follow returned %v, want context.Canceled", err)
		}
	})
	return follower, writer
}

func applyTo(t testing.TB, svc *service.Service, src string) {
	t.Helper()
	doc, err := policy.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(context.Background(), "test", doc, false); err != nil {
		t.Fatal(err)
	}
}

// propagate changes a role on writer and returns how long follower took to
// decide differently. It fails after a generous deadline.
func propagate(t testing.TB, follower, writer instance, grant bool) time.Duration {
	t.Helper()
	ctx := context.Background()
	req := &gatehouse.Request{Subject: gatehouse.User("ann@example.com"), Permission: "chat.write"}
	start := time.Now()
	if _, err := writer.svc.Update(ctx, "test", "role.update", func(p *gatehouse.Policy) error {
		for i := range p.Roles {
			if p.Roles[i].Name == "user" {
				p.Roles[i].Permissions = []string{"chat.view"}
				if grant {
					p.Roles[i].Permissions = append(p.Roles[i].Permissions, "chat.write")
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for decide(t, follower.svc, req).Allowed != grant {
		if time.Now().After(deadline) {
			t.Fatalf("follower still decides %v 10 s after the change", !grant)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestFollowSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "g.db")
	follower, writer := pair(t, func() gatehouse.Store {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	t.Logf("revoke reached the other instance after %v", propagate(t, follower, writer, false))
	t.Logf("grant reached the other instance after %v", propagate(t, follower, writer, true))
}

func openPostgres(t testing.TB) func() gatehouse.Store {
	dsn := pgtest.NewSchema(t, pgtest.DSN(t))
	return func() gatehouse.Store {
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// Two instances on one PostgreSQL database: a role change on one reaches
// the other through LISTEN/NOTIFY (DESIGN.md goal: within 1 s).
func TestFollowPostgres(t *testing.T) {
	t.Parallel()
	follower, writer := pair(t, openPostgres(t))
	for i, grant := range []bool{false, true, false} {
		t.Logf("change %d reached the other instance after %v", i+1, propagate(t, follower, writer, grant))
	}
}

// BenchmarkPropagationPostgres reports the time from a committed role
// change on one instance to a changed decision on another.
func BenchmarkPropagationPostgres(b *testing.B) {
	follower, writer := pair(b, openPostgres(b))
	grant := false
	for b.Loop() {
		propagate(b, follower, writer, grant)
		grant = !grant
	}
}
