package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// watch runs db.WatchVersion until the test ends and returns the versions
// it reports.
func watch(t *testing.T, db *postgres.DB) <-chan int64 {
	t.Helper()
	versions := make(chan int64, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- db.WatchVersion(ctx, func(v int64) { versions <- v }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("WatchVersion() after its context ended = %v, want context.Canceled", err)
		}
	})
	return versions
}

// next returns the next version reported, failing t if none comes in time.
func next(t *testing.T, versions <-chan int64) int64 {
	t.Helper()
	select {
	case v := <-versions:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("WatchVersion reported no version in 20s")
		return 0
	}
}

func wantNext(t *testing.T, versions <-chan int64, want int64, after string) {
	t.Helper()
	if v := next(t, versions); v != want {
		t.Fatalf("WatchVersion reported version %d %s, want %d", v, after, want)
	}
}

func TestWatchVersion(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	app := unique("gatehouse-watch")
	watched := openClosed(t, pgtest.WithParam(dsn, "application_name", app), postgres.WithWatchPoll(time.Hour))
	writer := openClosed(t, dsn)
	admin := pgtest.Connect(t, pgtest.DSN(t))
	versions := watch(t, watched)
	wantNext(t, versions, 0, "at the start")

	commit := func(base int64) time.Time {
		t.Helper()
		if _, err := writer.CommitPolicy(t.Context(), base, []gatehouse.Change{role(unique("r"))}, nil); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	committed := commit(0)
	wantNext(t, versions, 1, "after a commit in another process")
	t.Logf("notification reached the other process %v after its commit returned", time.Since(committed))

	// Notifications of another schema's store, and malformed ones, are not ours.
	if _, err := admin.Exec(t.Context(), `SELECT pg_notify($1, '99:another_schema'), pg_notify($1, 'garbage'), pg_notify($1, '98')`,
		postgres.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	commit(1)
	wantNext(t, versions, 2, "after foreign notifications and a commit")

	// The listening connection dies and a commit happens before it is back:
	// the version read on reconnecting catches up.
	terminate(t, admin, backends(t, admin, app, false))
	commit(2)
	wantNext(t, versions, 3, "after reconnecting")
	// And notifications arrive again.
	commit(3)
	wantNext(t, versions, 4, "after a commit once reconnected")

	// Events alone make no new version and no notification.
	if _, err := writer.CommitPolicy(t.Context(), 4, nil, []gatehouse.AuditEvent{decision(1)}); err != nil {
		t.Fatal(err)
	}
	commit(4)
	wantNext(t, versions, 5, "after an events-only commit and a commit")
}

func TestWatchVersionPolls(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := openClosed(t, dsn, postgres.WithWatchPoll(20*time.Millisecond))
	versions := watch(t, db)
	wantNext(t, versions, 0, "at the start")
	// A version change that no notification announces is found by polling.
	pgtest.Exec(t, dsn, `UPDATE meta SET value = '7' WHERE key = 'policy_version'`)
	wantNext(t, versions, 7, "after a silent change")
	if _, err := db.CommitPolicy(t.Context(), 7, []gatehouse.Change{role("r")}, nil); err != nil {
		t.Fatal(err)
	}
	wantNext(t, versions, 8, "after a commit")
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWatchVersionReconnectRefused(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	writer := openClosed(t, dsn)
	// The watch runs as a role of its own, which can be refused logins.
	login := unique("gh_watch")
	pgtest.Exec(t, dsn, `CREATE ROLE "`+login+`" LOGIN`,
		`GRANT ALL ON SCHEMA `+writer.Schema()+` TO "`+login+`"`,
		`GRANT ALL ON ALL TABLES IN SCHEMA `+writer.Schema()+` TO "`+login+`"`)
	t.Cleanup(func() {
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close(ctx)
		for _, s := range []string{`DROP OWNED BY "` + login + `"`, `DROP ROLE "` + login + `"`} {
			if _, err := admin.Exec(ctx, s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	var logs logBuffer
	app := unique("gatehouse-refused")
	watched := openClosed(t, pgtest.WithParam(pgtest.WithParam(dsn, "user", login), "application_name", app),
		postgres.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), postgres.WithWatchPoll(time.Hour))
	admin := pgtest.Connect(t, dsn)
	versions := watch(t, watched)
	wantNext(t, versions, 0, "at the start")

	if _, err := admin.Exec(t.Context(), `ALTER ROLE "`+login+`" NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	terminate(t, admin, backends(t, admin, app, false))
	if _, err := writer.CommitPolicy(t.Context(), 0, []gatehouse.Change{role("r")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watch to be refused reconnecting", func() bool {
		return strings.Contains(logs.String(), "not permitted to log in")
	})
	if _, err := admin.Exec(t.Context(), `ALTER ROLE "`+login+`" LOGIN`); err != nil {
		t.Fatal(err)
	}
	wantNext(t, versions, 1, "once it could reconnect")
}
