// Package sqlite implements gatehouse.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go) in WAL mode.
//
// Writes go through one connection whose transactions begin with BEGIN
// IMMEDIATE, so they serialize inside the process and take SQLite's write
// lock up front across processes; a lock held elsewhere for longer than the
// busy timeout is gatehouse.ErrUnavailable. Reads use a separate pool of
// read-only connections and, thanks to WAL, never wait for a writer.
//
// Before every write transaction the store checks that the path still names
// the file it opened (see DB.CheckWritable): a database deleted, moved or
// replaced under a running server, or made read-only, refuses writes with
// gatehouse.ErrUnavailable instead of acknowledging writes into a file no
// one will read again. Connections reopen the path without creating it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
)

// DefaultBusyTimeout is how long a write waits for a lock held by another
// connection before it fails with gatehouse.ErrUnavailable.
const DefaultBusyTimeout = 5 * time.Second

// Option configures Open.
type Option func(*config)

type config struct {
	clock       gatehouse.Clock
	busyTimeout time.Duration
}

// WithClock sets the clock that times audit events appended without a time;
// the default is the wall clock.
func WithClock(c gatehouse.Clock) Option {
	return func(cfg *config) { cfg.clock = c }
}

// WithBusyTimeout sets how long a statement waits for a lock held by another
// connection; the default is DefaultBusyTimeout.
func WithBusyTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.busyTimeout = d }
}

// DB is a Gatehouse store in one SQLite database file. It is safe for
// concurrent use.
type DB struct {
	path  string
	abs   string
	clock gatehouse.Clock
	// opened is the file Open opened; a path that names another file, or
	// none, refuses writes.
	opened os.FileInfo
	// write has a single connection; its transactions begin IMMEDIATE.
	write *sql.DB
	// read connections are query-only.
	read *sql.DB
}

var _ gatehouse.Store = (*DB)(nil)

// Open opens the database at path, creating the file if its directory
// exists, and migrates it to the latest schema (a read-only file at the
// latest schema opens, and refuses writes until it is writable). A file it
// cannot use fails with an *OpenError naming the problem: a directory that
// does not exist (nothing is created), a permission denied, a directory in
// the way, a file that is not a SQLite database, is damaged or belongs to
// another application (wrapping gatehouse.ErrCorrupt), or a lock another
// process holds beyond the busy timeout (gatehouse.ErrUnavailable, as the
// others). A database a newer Gatehouse migrated fails with
// gatehouse.ErrSchemaTooNew.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	cfg := config{clock: gatehouse.SystemClock{}, busyTimeout: DefaultBusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.busyTimeout < 0 {
		return nil, gatehouse.Invalidf("sqlite %s: open: negative busy timeout %v", path, cfg.busyTimeout)
	}
	abs, err := CheckPath(path)
	if err != nil {
		return nil, err
	}
	// An empty file is an empty SQLite database. Creating it here lets every
	// connection open the path with mode=rw, which never creates a file: a
	// connection reopened after the file was deleted fails instead of
	// starting an empty store.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
		if err := f.Close(); err != nil {
			return nil, openError(path, fmt.Errorf("sqlite %s: open: %w", path, err))
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, openError(path, fmt.Errorf("sqlite %s: open: %w", path, err))
	}
	// A file this process may not read would fail later, inside SQLite,
	// with a code that does not say why.
	f, err := os.Open(abs)
	if err != nil {
		return nil, openError(path, fmt.Errorf("sqlite %s: open: %w", path, err))
	}
	opened, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: open: %w", path, err)
	}

	db := &DB{path: path, abs: abs, clock: cfg.clock, opened: opened}
	busy := strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)
	db.write, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_foreign_keys": {"on"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
		"mode":          {"rw"},
	}))
	if err != nil {
		return nil, db.wrap("open", err)
	}
	db.write.SetMaxOpenConns(1)
	if err := db.write.PingContext(ctx); err != nil {
		db.write.Close()
		return nil, openError(path, db.wrap("open", err))
	}
	if err := db.Migrate(ctx); err != nil {
		db.write.Close()
		return nil, openError(path, err)
	}
	db.read, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_query_only":   {"on"},
		"mode":          {"rw"},
	}))
	if err != nil {
		db.write.Close()
		return nil, db.wrap("open", err)
	}
	db.read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	if err := db.read.PingContext(ctx); err != nil {
		db.read.Close()
		db.write.Close()
		return nil, openError(path, db.wrap("open", err))
	}
	return db, nil
}

// dsn builds a file: URI, so that a path holding '?' or '#' stays a path.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	if u.Path[0] != '/' {
		// A Windows path, C:/…, needs a leading slash in a URI.
		u.Path = "/" + u.Path
	}
	return u.String()
}

// Close closes the database.
func (db *DB) Close() error {
	if err := errors.Join(db.read.Close(), db.write.Close()); err != nil {
		return fmt.Errorf("sqlite %s: close: %w", db.path, err)
	}
	return nil
}

// errLocked marks a lock held by another connection beyond the busy timeout.
var errLocked = errors.New("database is locked by another process")

// wrap adds the operation and path to err and maps SQLite's lock and
// corruption errors to the gatehouse sentinels; errors that already carry a
// sentinel or a context error keep it.
func (db *DB) wrap(op string, err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("sqlite %s: %s: %w (%v): %w",
				db.path, op, errLocked, se, gatehouse.ErrUnavailable)
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("sqlite %s: %s: %v: %w", db.path, op, se, gatehouse.ErrCorrupt)
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			// The file, its directory or the disk refuses writes now; it
			// may accept them again without a restart.
			return fmt.Errorf("sqlite %s: %s: the database cannot be written (%v): %w",
				db.path, op, se, gatehouse.ErrUnavailable)
		}
	}
	return fmt.Errorf("sqlite %s: %s: %w", db.path, op, err)
}

// CheckWritable reports, with an error wrapping gatehouse.ErrUnavailable,
// why a write cannot succeed now: the path no longer names the file Open
// opened (deleted, moved or replaced: writes stay refused until a restart),
// the file is read-only (for every user, root included), or SQLite cannot
// take the write lock or write. It writes in a transaction it rolls back,
// so it waits for the busy timeout behind another writer.
func (db *DB) CheckWritable(ctx context.Context) error {
	// BEGIN IMMEDIATE succeeds on a file SQLite opened read-only; a write,
	// rolled back, does not.
	return db.runWrite(ctx, "check writable", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE meta SET value = value WHERE key = 'policy_version'`)
		return err
	})
}

// checkFile is the check writeTx makes before every write transaction.
func (db *DB) checkFile() error {
	fi, err := os.Stat(db.abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the database file is gone (deleted or moved while open); writes are refused until it is restored and the server restarted: %w",
			gatehouse.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("the database file cannot be checked (%v): %w", err, gatehouse.ErrUnavailable)
	case !os.SameFile(db.opened, fi):
		return fmt.Errorf("the database file was replaced by another file while open; writes are refused until the server is restarted: %w",
			gatehouse.ErrUnavailable)
	case fi.Mode().Perm()&0o222 == 0:
		return fmt.Errorf("the database file is read-only: %w", gatehouse.ErrUnavailable)
	}
	return nil
}

// writeTx runs fn in a write transaction, begun IMMEDIATE, and commits if fn
// succeeds; any error rolls everything back. It checks the file first (see
// CheckWritable).
func (db *DB) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return db.runWrite(ctx, op, true, fn)
}

// runWrite runs fn in a write transaction and commits it, or rolls it back
// when commit is false. A connection SQLite opened read-only stays so even
// once the file is writable again: when the first attempt finds the
// database read-only, nothing was written, and it tries once more on a
// fresh connection.
func (db *DB) runWrite(ctx context.Context, op string, commit bool, fn func(tx *sql.Tx) error) error {
	if err := db.checkFile(); err != nil {
		return fmt.Errorf("sqlite %s: %s: %w", db.path, op, err)
	}
	err := db.inWriteTx(ctx, commit, fn)
	var se *msqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY && ctx.Err() == nil {
		db.dropIdle(gatehouse.ErrUnavailable)
		err = db.inWriteTx(ctx, commit, fn)
	}
	if err != nil {
		err = db.wrap(op, ctxErr(ctx, err))
		db.dropIdle(err)
	}
	return err
}

func (db *DB) inWriteTx(ctx context.Context, commit bool, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil || !commit {
		// Rollback's own error adds nothing: the transaction is void either way.
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// readTx runs fn in a read transaction: one consistent snapshot.
func (db *DB) readTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		err = db.wrap(op, ctxErr(ctx, err))
		db.dropIdle(err)
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		err = db.wrap(op, ctxErr(ctx, err))
		db.dropIdle(err)
		return err
	}
	return nil
}

// dropIdle closes the idle connections after a fault that a fresh
// connection may not have: a connection that opened a read-only file stays
// read-only, and one that read a damaged file may keep its damaged state.
// The next statement reopens the path (never creating it), so restoring
// the permissions or the file's contents in place heals the store without a
// restart.
func (db *DB) dropIdle(err error) {
	if !errors.Is(err, gatehouse.ErrUnavailable) && !errors.Is(err, gatehouse.ErrCorrupt) {
		return
	}
	for _, p := range []*sql.DB{db.write, db.read} {
		if p == nil {
			continue
		}
		p.SetMaxIdleConns(0)
		p.SetMaxIdleConns(2)
	}
}

// ctxErr prefers the context's error when the context ended, since the
// driver reports an interrupted statement in its own words.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
