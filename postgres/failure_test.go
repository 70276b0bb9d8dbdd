package postgres_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// state is everything a store holds, to show that a failed call changed
// nothing.
type state struct {
	Objects []gatehouse.Object
	Version int64
	Head    gatehouse.AuditHead
	Events  []gatehouse.AuditEvent
}

func snapshot(t *testing.T, db *postgres.DB) state {
	t.Helper()
	var st state
	var err error
	if st.Objects, st.Version, err = db.LoadPolicy(t.Context()); err != nil {
		t.Fatalf("LoadPolicy() = %v", err)
	}
	if st.Head, err = db.AuditHead(t.Context()); err != nil {
		t.Fatalf("AuditHead() = %v", err)
	}
	if st.Events, err = db.ListAudit(t.Context(), gatehouse.AuditFilter{Limit: 10000}); err != nil {
		t.Fatalf("ListAudit() = %v", err)
	}
	return st
}

// verify checks the chain with audit.Verify and that it holds n events.
func verify(t *testing.T, db *postgres.DB, n int64) {
	t.Helper()
	rep, err := audit.Verify(t.Context(), db)
	if err != nil {
		t.Fatalf("audit.Verify() = %v", err)
	}
	if rep.Events != n {
		t.Errorf("audit.Verify() checked %d events, want %d", rep.Events, n)
	}
}

// waitFor polls cond until it holds, failing t after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backends returns the pids of the server sessions of application app, or
// only those waiting for a lock.
func backends(t *testing.T, admin *pgx.Conn, app string, waitingForLock bool) []int32 {
	t.Helper()
	rows, err := admin.Query(t.Context(), `SELECT pid FROM pg_stat_activity
		WHERE application_name = $1 AND (NOT $2 OR wait_event_type = 'Lock') ORDER BY pid`, app, waitingForLock)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// terminate ends the given server sessions as an administrator would, and
// waits until they are gone.
func terminate(t *testing.T, admin *pgx.Conn, pids []int32) {
	t.Helper()
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, pids); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "terminated sessions to end", func() bool {
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// lockMeta holds the locks of every meta row in a transaction of its own
// until the returned function is called.
func lockMeta(t *testing.T, dsn string) (release func()) {
	t.Helper()
	conn := pgtest.Connect(t, dsn)
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT * FROM meta FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocked(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	const timeout = 100 * time.Millisecond
	db := openClosed(t, dsn, postgres.WithLockTimeout(timeout))
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{role("r")}, nil); err != nil {
		t.Fatal(err)
	}
	release := lockMeta(t, dsn)

	start := time.Now()
	_, err := db.CommitPolicy(t.Context(), 1, []gatehouse.Change{role("s")}, []gatehouse.AuditEvent{decision(1)})
	elapsed := time.Since(start)
	if !errors.Is(err, gatehouse.ErrUnavailable) || !strings.Contains(err.Error(), "locked by another transaction") {
		t.Errorf("CommitPolicy(while locked) = %v, want ErrUnavailable", err)
	}
	if elapsed < timeout || elapsed > timeout+3*time.Second {
		t.Errorf("CommitPolicy(while locked) gave up after %v, want about the lock timeout %v", elapsed, timeout)
	}
	if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{decision(2)}); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("AppendAudit(while locked) = %v, want ErrUnavailable", err)
	}
	// Readers do not wait for writers.
	objs, v, err := db.LoadPolicy(t.Context())
	if err != nil || v != 1 || len(objs) != 1 {
		t.Errorf("LoadPolicy(while locked) = %d objects, version %d, %v; want 1, 1, nil", len(objs), v, err)
	}
	if head, err := db.AuditHead(t.Context()); err != nil || head.Seq != 0 {
		t.Errorf("AuditHead(while locked) = %+v, %v; want empty", head, err)
	}

	release()
	if _, err := db.CommitPolicy(t.Context(), 1, []gatehouse.Change{role("s")}, []gatehouse.AuditEvent{decision(3)}); err != nil {
		t.Errorf("CommitPolicy() after the lock = %v", err)
	}
	verify(t, db, 1)
}

func TestConnectionLost(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	app := unique("gatehouse-lost")
	db := openClosed(t, pgtest.WithParam(dsn, "application_name", app))
	admin := pgtest.Connect(t, pgtest.DSN(t))
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{role("a")}, []gatehouse.AuditEvent{decision(1)}); err != nil {
		t.Fatal(err)
	}

	// Idle connections die: the next calls run on new ones.
	terminate(t, admin, backends(t, admin, app, false))
	if v, err := db.PolicyVersion(t.Context()); err != nil || v != 1 {
		t.Errorf("PolicyVersion() after the connections were terminated = %d, %v; want 1", v, err)
	}
	terminate(t, admin, backends(t, admin, app, false))
	if v, err := db.CommitPolicy(t.Context(), 1, []gatehouse.Change{role("b")}, []gatehouse.AuditEvent{decision(2)}); err != nil || v != 2 {
		t.Errorf("CommitPolicy() after the connections were terminated = %d, %v; want version 2", v, err)
	}

	// A connection dies inside a transaction: it is run again on a new one.
	release := lockMeta(t, dsn)
	type result struct {
		version int64
		err     error
	}
	done := make(chan result, 1)
	go func() {
		v, err := db.CommitPolicy(t.Context(), 2, []gatehouse.Change{role("c")}, []gatehouse.AuditEvent{decision(3)})
		done <- result{v, err}
	}()
	var waiting []int32
	waitFor(t, "the commit to wait for the lock", func() bool {
		waiting = backends(t, admin, app, true)
		return len(waiting) == 1
	})
	terminate(t, admin, waiting)
	waitFor(t, "the commit to wait for the lock again", func() bool {
		return len(backends(t, admin, app, true)) == 1
	})
	release()
	if r := <-done; r.err != nil || r.version != 3 {
		t.Errorf("CommitPolicy(connection lost once while waiting) = %d, %v; want version 3", r.version, r.err)
	}
	verify(t, db, 3)

	// It dies again on the second try: the call fails and nothing is written.
	before := snapshot(t, db)
	release = lockMeta(t, dsn)
	go func() {
		v, err := db.CommitPolicy(t.Context(), 3, []gatehouse.Change{role("d")}, []gatehouse.AuditEvent{decision(4)})
		done <- result{v, err}
	}()
	for range 2 {
		waitFor(t, "the commit to wait for the lock", func() bool {
			waiting = backends(t, admin, app, true)
			return len(waiting) == 1
		})
		terminate(t, admin, waiting)
	}
	r := <-done
	if !errors.Is(r.err, gatehouse.ErrUnavailable) || !strings.Contains(r.err.Error(), "connection to the server lost") {
		t.Errorf("CommitPolicy(connection lost on both tries) = %d, %v; want ErrUnavailable", r.version, r.err)
	}
	release()
	if diff := cmp.Diff(before, snapshot(t, db)); diff != "" {
		t.Errorf("the failed commit changed the store (-before +after):\n%s", diff)
	}
	// The store works again without being reopened.
	if v, err := db.CommitPolicy(t.Context(), 3, []gatehouse.Change{role("d")}, []gatehouse.AuditEvent{decision(4)}); err != nil || v != 4 {
		t.Errorf("CommitPolicy() after the failure = %d, %v; want version 4", v, err)
	}
	verify(t, db, 4)
}

// faultProxy is a TCP proxy to the test server that breaks connections on
// demand: when armed, the connection that sends the next COMMIT, before
// passing it on or after the server has answered it without passing the
// answer back; when down, every connection.
type faultProxy struct {
	ln     net.Listener
	target string
	// armed is cutNone, cutBefore or cutAfter.
	armed atomic.Int32
	// cut is told when a connection was broken at a COMMIT.
	cut chan struct{}

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

const (
	cutNone = iota
	cutBefore
	cutAfter
)

// newFaultProxy starts a proxy to the server of dsn and returns it and dsn
// pointed at it.
func newFaultProxy(t *testing.T, dsn string) (*faultProxy, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxied := strings.Replace(dsn, target, ln.Addr().String(), 1)
	if proxied == dsn {
		t.Fatalf("test setup: cannot point %s at a proxy", dsn)
	}
	p := &faultProxy{ln: ln, target: target, cut: make(chan struct{}, 1), conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(client) })
		}
	})
	return p, proxied
}

// setDown makes the server unreachable through p, breaking every connection
// and refusing new ones, or reachable again.
func (p *faultProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *faultProxy) serve(client net.Conn) {
	defer client.Close()
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		return
	}
	p.conns[client] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
	}()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	var swallow atomic.Bool
	// answered is closed when the server has answered a swallowed message,
	// or has closed the connection.
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		defer client.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && swallow.Load() {
				return
			}
			if n > 0 {
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	// The startup message, and an SSL or GSS request before it, has no type
	// byte; every later message has one.
	startup := true
	for {
		var typ [1]byte
		if !startup {
			if _, err := io.ReadFull(client, typ[:]); err != nil {
				return
			}
		}
		var size [4]byte
		if _, err := io.ReadFull(client, size[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:])-4)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		msg := append(append(typ[:], size[:]...), body...)
		if startup {
			code := binary.BigEndian.Uint32(body)
			msg, startup = msg[1:], code == 80877103 || code == 80877104
		}
		if typ[0] == 'Q' && strings.EqualFold(strings.TrimRight(string(body), "\x00"), "commit") {
			switch p.armed.Swap(cutNone) {
			case cutBefore:
				p.cut <- struct{}{}
				return
			case cutAfter:
				swallow.Store(true)
				if _, err := server.Write(msg); err != nil {
					return
				}
				<-answered
				p.cut <- struct{}{}
				return
			}
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

func TestConnectionLostDuringCommit(t *testing.T) {
	t.Parallel()
	proxy, dsn := newFaultProxy(t, newSchema(t))
	db := openClosed(t, dsn)

	tests := []struct {
		name string
		cut  int32
	}{
		{"commit lost on the way", cutBefore},
		{"answer lost on the way back", cutAfter},
	}
	var seq int64
	for i, tt := range tests {
		proxy.armed.Store(tt.cut)
		version := int64(i)
		events := []gatehouse.AuditEvent{decision(i)}
		v, err := db.CommitPolicy(t.Context(), version, []gatehouse.Change{role(fmt.Sprint("r", i))}, events)
		select {
		case <-proxy.cut:
		default:
			t.Fatalf("%s: test setup: the proxy cut no commit", tt.name)
		}
		seq++
		if err != nil || v != version+1 || events[0].Seq != seq {
			t.Errorf("CommitPolicy(%s) = %d, %v, event seq %d; want version %d, seq %d", tt.name, v, err, events[0].Seq, version+1, seq)
		}

		proxy.armed.Store(tt.cut)
		events = []gatehouse.AuditEvent{decision(10 + i)}
		err = db.AppendAudit(t.Context(), events)
		<-proxy.cut
		seq++
		if err != nil || events[0].Seq != seq {
			t.Errorf("AppendAudit(%s) = %v, event seq %d; want seq %d", tt.name, err, events[0].Seq, seq)
		}
	}
	// Each write took effect exactly once.
	if v, err := db.PolicyVersion(t.Context()); err != nil || v != int64(len(tests)) {
		t.Errorf("PolicyVersion() = %d, %v; want %d", v, err, len(tests))
	}
	verify(t, db, seq)
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	proxy, dsn := newFaultProxy(t, newSchema(t))
	db := openClosed(t, dsn)
	if _, err := db.CommitPolicy(t.Context(), 0, []gatehouse.Change{role("a")}, []gatehouse.AuditEvent{decision(1)}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, db)

	proxy.setDown(true)
	_, err := db.CommitPolicy(t.Context(), 1, []gatehouse.Change{role("b")}, []gatehouse.AuditEvent{decision(2)})
	if !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("CommitPolicy(server down) = %v, want ErrUnavailable", err)
	}
	if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{decision(3)}); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("AppendAudit(server down) = %v, want ErrUnavailable", err)
	}
	if _, _, err := db.LoadPolicy(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("LoadPolicy(server down) = %v, want ErrUnavailable", err)
	}

	// Back up: the store reconnects by itself, and nothing was half-written.
	proxy.setDown(false)
	if diff := cmp.Diff(before, snapshot(t, db)); diff != "" {
		t.Errorf("calls while the server was down changed the store (-before +after):\n%s", diff)
	}
	if v, err := db.CommitPolicy(t.Context(), 1, []gatehouse.Change{role("b")}, []gatehouse.AuditEvent{decision(2)}); err != nil || v != 2 {
		t.Errorf("CommitPolicy() once the server is back = %d, %v; want version 2", v, err)
	}
	verify(t, db, 2)
}

func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	dbs := []*postgres.DB{openClosed(t, dsn), openClosed(t, dsn)}
	const (
		committers = 2 // per process
		commits    = 8 // per committer
		appenders  = 2 // per process
		appends    = 15
	)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[int64]string{}
		start    = make(chan struct{})
	)
	for p, db := range dbs {
		for c := range committers {
			wg.Go(func() {
				<-start
				for i := range commits {
					id := fmt.Sprintf("p%d-c%d-%d", p, c, i)
					for {
						base, err := db.PolicyVersion(t.Context())
						if err != nil {
							t.Errorf("PolicyVersion() = %v", err)
							return
						}
						events := []gatehouse.AuditEvent{{Time: time.Now(), Actor: "agent:" + id, Action: "policy.apply"}}
						v, err := db.CommitPolicy(t.Context(), base, []gatehouse.Change{role(id)}, events)
						if errors.Is(err, gatehouse.ErrConflict) {
							continue
						}
						if err != nil {
							t.Errorf("CommitPolicy(%s) = %v", id, err)
							return
						}
						mu.Lock()
						if other, dup := versions[v]; dup {
							t.Errorf("CommitPolicy(%s) and CommitPolicy(%s) both made version %d", id, other, v)
						}
						versions[v] = id
						mu.Unlock()
						break
					}
				}
			})
		}
		for a := range appenders {
			wg.Go(func() {
				<-start
				for i := range appends {
					e := decision(i)
					e.Actor = fmt.Sprintf("agent:p%d-a%d", p, a)
					if err := db.AppendAudit(t.Context(), []gatehouse.AuditEvent{e, e}); err != nil {
						t.Errorf("AppendAudit(%s) = %v", e.Actor, err)
						return
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()

	total := int64(len(dbs) * committers * commits)
	for v := int64(1); v <= total; v++ {
		if _, ok := versions[v]; !ok {
			t.Errorf("no commit made version %d", v)
		}
	}
	objs, v, err := dbs[1].LoadPolicy(t.Context())
	if err != nil || v != total || int64(len(objs)) != total {
		t.Errorf("LoadPolicy() = %d objects, version %d, %v; want %d, %d", len(objs), v, err, total, total)
	}
	for _, db := range dbs {
		verify(t, db, total+int64(len(dbs)*appenders*appends*2))
	}
}

func TestContextDeadlineWhileLocked(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := openClosed(t, dsn)
	release := lockMeta(t, dsn)
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := db.AppendAudit(ctx, []gatehouse.AuditEvent{decision(1)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AppendAudit(deadline while locked) = %v, want context.DeadlineExceeded", err)
	}
}
