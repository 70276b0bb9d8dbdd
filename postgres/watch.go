package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnect backoff of WatchVersion: it doubles from the first to the last.
const (
	watchBackoffFirst = 100 * time.Millisecond
	watchBackoffMax   = 5 * time.Second
)

// WatchVersion calls fn with the policy version whenever it changes, until
// ctx ends, and then returns ctx's error. It listens on NotifyChannel on a
// connection of its own: fn gets the version read when the watch starts,
// then each newer version a commit in any process announces. If the
// connection is lost it reconnects, backing off up to 5 seconds between
// attempts, and calls fn with the version read then if it changed, which
// catches up on notifications missed meanwhile. Every poll interval (see
// WithWatchPoll) without a notification it reads the version too, which
// finds a connection that died silently. fn runs on WatchVersion's
// goroutine and sees each version at most once in a row.
func (db *DB) WatchVersion(ctx context.Context, fn func(version int64)) error {
	w := watcher{db: db, fn: fn, last: -1}
	backoff := watchBackoffFirst
	for {
		err := w.listen(ctx, func() { backoff = watchBackoffFirst })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		db.logger.Warn("postgres watch: connection lost; reconnecting",
			"server", db.where, "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watcher is one WatchVersion's state across connections.
type watcher struct {
	db *DB
	fn func(int64)
	// last is the version fn saw last, -1 before the first.
	last int64
}

// listen runs one connection: LISTEN, catch up, then deliver notifications
// and poll until the connection fails or ctx ends. It calls connected once
// it listens.
func (w *watcher) listen(ctx context.Context, connected func()) error {
	db := w.db
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		// Close's error adds nothing: the connection is gone either way.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	// Read after LISTEN, so no commit falls between the two.
	if err := w.poll(ctx, conn); err != nil {
		return err
	}
	connected()
	db.logger.Info("postgres watch: listening", "server", db.where, "version", w.last)
	for {
		waitCtx, cancel := context.WithTimeout(ctx, db.watchPoll)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			version, schema, ok := parsePayload(n.Payload)
			if ok && schema == db.schema && version > w.last {
				w.deliver(version)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			if err := w.poll(ctx, conn); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// watchPollTimeout bounds a version read on the watch connection, so that a
// dead connection is noticed.
const watchPollTimeout = 5 * time.Second

// poll reads the version on conn and delivers it if it changed.
func (w *watcher) poll(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, watchPollTimeout)
	defer cancel()
	var value string
	if err := conn.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, keyVersion).Scan(&value); err != nil {
		return fmt.Errorf("read policy version: %w", err)
	}
	version, err := metaValues{keyVersion: value}.int(keyVersion)
	if err != nil {
		return err
	}
	if version != w.last {
		w.deliver(version)
	}
	return nil
}

func (w *watcher) deliver(version int64) {
	w.last = version
	w.fn(version)
}

// parsePayload splits a NotifyChannel payload, "VERSION:SCHEMA".
func parsePayload(payload string) (version int64, schema string, ok bool) {
	v, schema, found := strings.Cut(payload, ":")
	version, err := strconv.ParseInt(v, 10, 64)
	return version, schema, found && err == nil
}
