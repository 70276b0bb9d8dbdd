// Package postgres implements gatehouse.Store on PostgreSQL 13 or newer
// through jackc/pgx/v5, for deployments that run several Gatehouse
// instances on one database.
//
// Every write is one transaction that begins by locking the meta rows it
// moves (the policy version, the audit head) with SELECT … FOR UPDATE, so
// writers in any number of processes queue on those rows: the optimistic
// version check is exact and the audit chain never forks. A lock held
// elsewhere for longer than the lock timeout is gatehouse.ErrUnavailable.
// Readers never wait for writers.
//
// A transaction whose connection is lost before it commits is run once more
// on a fresh connection; one lost during the commit is looked up by its
// transaction id, so a write either reports its true outcome or says that
// the outcome is unknown. A committed policy change notifies NotifyChannel,
// which WatchVersion listens to.
//
// The DSN chooses the schema: search_path=NAME, a runtime parameter in
// either DSN form, keeps several deployments, or tests, apart in one
// database. It may also size the pool (pool_max_conns, by default the
// larger of 4 and the number of CPUs) and set any other server parameter.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse"
)

// Defaults of the options.
const (
	// DefaultConnectTimeout bounds each connection attempt when neither the
	// DSN (connect_timeout) nor WithConnectTimeout sets one.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultLockTimeout is how long a write waits for a lock held by
	// another transaction before it fails with gatehouse.ErrUnavailable.
	DefaultLockTimeout = 5 * time.Second
	// DefaultWatchPoll is how often WatchVersion checks its connection and
	// the version when no notification arrives.
	DefaultWatchPoll = 10 * time.Second
)

// Option configures Open.
type Option func(*config)

type config struct {
	clock          gatehouse.Clock
	logger         *slog.Logger
	connectTimeout time.Duration
	lockTimeout    time.Duration
	watchPoll      time.Duration
}

// WithClock sets the clock that times audit events appended without a time;
// the default is the wall clock.
func WithClock(c gatehouse.Clock) Option {
	return func(cfg *config) { cfg.clock = c }
}

// WithLogger sets the logger for lost connections and reconnects; the
// default discards.
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) { cfg.logger = l }
}

// WithConnectTimeout bounds each connection attempt, overriding the DSN's
// connect_timeout; the default is the DSN's, else DefaultConnectTimeout.
func WithConnectTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.connectTimeout = d }
}

// WithLockTimeout sets how long a statement waits for a lock held by another
// transaction, overriding the DSN's lock_timeout; the default is
// DefaultLockTimeout, and 0 waits as long as it takes.
func WithLockTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.lockTimeout = d }
}

// WithWatchPoll sets how often WatchVersion checks its connection and the
// version when no notification arrives; the default is DefaultWatchPoll.
func WithWatchPoll(d time.Duration) Option {
	return func(cfg *config) { cfg.watchPoll = d }
}

// DB is a Gatehouse store in one PostgreSQL schema. It is safe for
// concurrent use.
type DB struct {
	pool *pgxpool.Pool
	// where names the server and database in messages: host:port/database,
	// never the password.
	where string
	// schema is where the tables live: the first existing schema of the
	// search_path.
	schema    string
	clock     gatehouse.Clock
	logger    *slog.Logger
	watchPoll time.Duration
}

var _ gatehouse.Store = (*DB)(nil)

// Open connects to the database that dsn names (a postgres:// URL or
// key=value pairs, as libpq takes them) and migrates its schema to the
// latest version. It fails with an error wrapping gatehouse.ErrUnavailable,
// naming host and port, if the server cannot be reached within the connect
// timeout; with gatehouse.ErrSchemaTooNew, changing nothing, if a newer
// Gatehouse migrated the schema; with gatehouse.ErrCorrupt if the schema
// holds tables Gatehouse did not create; and with gatehouse.ErrInvalid for
// a DSN that does not parse or a negative duration.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	cfg := config{
		clock:       gatehouse.SystemClock{},
		logger:      slog.New(slog.DiscardHandler),
		lockTimeout: DefaultLockTimeout,
		watchPoll:   DefaultWatchPoll,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case dsn == "":
		return nil, gatehouse.Invalidf("postgres: open: empty DSN")
	case cfg.connectTimeout < 0 || cfg.lockTimeout < 0 || cfg.watchPoll <= 0:
		return nil, gatehouse.Invalidf("postgres: open: connect timeout %v, lock timeout %v, watch poll %v: want no negative duration and a positive poll",
			cfg.connectTimeout, cfg.lockTimeout, cfg.watchPoll)
	}
	// pgx masks the password in the message of a DSN it cannot parse.
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, gatehouse.Invalidf("postgres: open: %v", err)
	}
	cc := pcfg.ConnConfig
	switch {
	case cfg.connectTimeout > 0:
		cc.ConnectTimeout = cfg.connectTimeout
	case cc.ConnectTimeout == 0:
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	cc.RuntimeParams["lock_timeout"] = strconv.FormatInt(cfg.lockTimeout.Milliseconds(), 10)
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "gatehouse"
	}
	db := &DB{
		where:     net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database,
		clock:     cfg.clock,
		logger:    cfg.logger,
		watchPoll: cfg.watchPoll,
	}
	db.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, db.wrap(ctx, "open", err)
	}
	var schema *string
	err = db.readTx(ctx, "open", func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema)
	})
	if err != nil {
		db.pool.Close()
		return nil, err
	}
	if schema == nil {
		db.pool.Close()
		return nil, fmt.Errorf("postgres %s: open: search_path %q names no existing schema; create it first",
			db.where, cc.RuntimeParams["search_path"])
	}
	db.schema = *schema
	if err := db.Migrate(ctx); err != nil {
		db.pool.Close()
		return nil, err
	}
	return db, nil
}

// Schema returns the schema the store's tables live in.
func (db *DB) Schema() string { return db.schema }

// Close closes every connection of the store's pool; a running WatchVersion
// has its own connection and ends with its context.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// wrap adds the operation and server to err and maps PostgreSQL's lock,
// serialization and connection errors to the gatehouse sentinels; errors
// that already carry a sentinel keep it, and when ctx ended its error
// is the one wrapped.
func (db *DB) wrap(ctx context.Context, op string, err error) error {
	prefix := "postgres " + db.where + ": " + op
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %w (%v)", prefix, cerr, err)
	}
	for _, s := range []error{gatehouse.ErrInvalid, gatehouse.ErrConflict, gatehouse.ErrUnavailable,
		gatehouse.ErrCorrupt, gatehouse.ErrSchemaTooNew} {
		if errors.Is(err, s) {
			return fmt.Errorf("%s: %w", prefix, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "55P03": // lock_not_available: lock_timeout expired
			return fmt.Errorf("%s: locked by another transaction beyond the lock timeout (%v): %w",
				prefix, pe, gatehouse.ErrUnavailable)
		case pe.Code == "40001" || pe.Code == "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("%s: %v: %w", prefix, pe, gatehouse.ErrConflict)
		case pe.Code == "25006": // read_only_sql_transaction: a standby, or default_transaction_read_only
			return fmt.Errorf("%s: the server accepts no writes (%v): %w", prefix, pe, gatehouse.ErrUnavailable)
		case serverGone(pe):
			return fmt.Errorf("%s: server unavailable (%v): %w", prefix, pe, gatehouse.ErrUnavailable)
		}
		return fmt.Errorf("%s: %w", prefix, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: cannot connect to the server (%v): %w", prefix, err, gatehouse.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// serverGone reports an error the server sends when it ends or refuses the
// session: connection exceptions, shutdown, termination by an
// administrator, too many connections.
func serverGone(pe *pgconn.PgError) bool {
	switch {
	case strings.HasPrefix(pe.Code, "08"):
		return true
	case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300":
		return true
	}
	return false
}

// CheckWritable reports, with an error wrapping gatehouse.ErrUnavailable,
// that a write cannot succeed now: the server is unreachable, a read-only
// standby, or refuses writes (default_transaction_read_only). It asks in
// the kind of transaction writes begin, writing nothing.
func (db *DB) CheckWritable(ctx context.Context) error {
	return db.writeTx(ctx, "check writable", nil, func(tx pgx.Tx, _ metaValues) error {
		var readOnly bool
		if err := tx.QueryRow(ctx, "SELECT current_setting('transaction_read_only') = 'on'").Scan(&readOnly); err != nil {
			return err
		}
		if readOnly {
			return fmt.Errorf("the server accepts no writes (transaction_read_only is on: a standby, or default_transaction_read_only): %w",
				gatehouse.ErrUnavailable)
		}
		return nil
	})
}

// readTx runs fn in a read-only transaction on one consistent snapshot.
func (db *DB) readTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	return db.run(ctx, op, opts, nil, func(tx pgx.Tx, _ metaValues) error { return fn(tx) })
}

// writeTx runs fn in a read-committed transaction that first locks the
// meta rows named by keys, in key order, and passes fn their values as
// committed by the previous holder of the lock.
func (db *DB) writeTx(ctx context.Context, op string, keys []string, fn func(tx pgx.Tx, meta metaValues) error) error {
	return db.run(ctx, op, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, keys, fn)
}

// run runs one transaction and, if the connection was lost without the
// transaction committing, once more on a fresh connection.
func (db *DB) run(ctx context.Context, op string, opts pgx.TxOptions, keys []string, fn func(tx pgx.Tx, meta metaValues) error) error {
	for try := 1; ; try++ {
		lost, err := db.attempt(ctx, opts, keys, fn)
		if err == nil {
			return nil
		}
		if lost {
			// When one connection died the others likely did too (a restart,
			// a failover); the pool dials fresh ones as needed.
			db.pool.Reset()
			if try < 2 {
				db.logger.Warn("postgres connection lost; retrying on a new connection",
					"server", db.where, "op", op, "err", err)
				continue
			}
			err = fmt.Errorf("connection to the server lost, nothing committed (%v): %w", err, gatehouse.ErrUnavailable)
		}
		return db.wrap(ctx, op, err)
	}
}

// attempt runs fn in one transaction. lost reports a failure because the
// connection was lost while ctx was alive, with the transaction certainly
// not committed, so that running it again is safe.
func (db *DB) attempt(ctx context.Context, opts pgx.TxOptions, keys []string, fn func(tx pgx.Tx, meta metaValues) error) (lost bool, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		// The pool has dialed a fresh connection if it needed one.
		return false, err
	}
	defer conn.Release()
	isLost := func(err error) bool {
		var pe *pgconn.PgError
		return ctx.Err() == nil && (conn.Conn().IsClosed() || errors.As(err, &pe) && serverGone(pe))
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return isLost(err), err
	}
	var (
		meta metaValues
		xid  string
	)
	if len(keys) > 0 {
		meta, xid, err = lockMeta(ctx, tx, keys)
	}
	if err == nil {
		err = fn(tx, meta)
	}
	if err != nil {
		// Judged before the rollback, which may fail on its own.
		lost := isLost(err)
		// Rollback's own error adds nothing: the transaction is void either way.
		_ = tx.Rollback(ctx)
		return lost, err
	}
	err = tx.Commit(ctx)
	if err != nil && opts.AccessMode == pgx.ReadOnly {
		return isLost(err), err
	}
	var pe *pgconn.PgError
	if err == nil || errors.As(err, &pe) || errors.Is(err, pgx.ErrTxCommitRollback) {
		// The server answered the commit: what it said is the outcome.
		return false, err
	}
	if xid == "" {
		return false, fmt.Errorf("connection lost during the commit, which may or may not have taken effect: %w", err)
	}
	switch status := db.xactStatus(ctx, xid); status {
	case "committed":
		return false, nil
	case "aborted":
		return ctx.Err() == nil, err
	default:
		return false, fmt.Errorf("connection lost during the commit, which may or may not have taken effect (transaction %s: %s): %w",
			xid, status, err)
	}
}

// xactStatusTimeout bounds the look-up of a commit's outcome.
const xactStatusTimeout = 5 * time.Second

// xactStatus asks the server, on another connection, what became of the
// transaction xid: "committed", "aborted", or why it cannot say. A
// transaction that is still ending is asked about again until it has ended.
func (db *DB) xactStatus(ctx context.Context, xid string) string {
	// The look-up runs even when ctx ended: it decides what the caller is told.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), xactStatusTimeout)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var status *string
		if err := db.pool.QueryRow(ctx, `SELECT pg_xact_status($1::xid8)`, xid).Scan(&status); err != nil {
			return "status unknown: " + err.Error()
		}
		if status == nil {
			return "status no longer recorded"
		}
		if *status != "in progress" {
			return *status
		}
		select {
		case <-ctx.Done():
			return "still in progress"
		case <-time.After(wait):
		}
	}
}

// Meta keys.
const (
	keyVersion  = "policy_version"
	keyHeadSeq  = "audit_head_seq"
	keyHeadHash = "audit_head_hash"
	keyBaseSeq  = "audit_base_seq"
	keyBaseHash = "audit_base_hash"
	keyBaseKept = "audit_base_retained"
)

// metaValues are meta rows by key.
type metaValues map[string]string

// int returns the meta value of key as a number.
func (m metaValues) int(key string) (int64, error) {
	n, err := strconv.ParseInt(m[key], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("meta %s = %q is not a number: %w", key, m[key], gatehouse.ErrCorrupt)
	}
	return n, nil
}

// head returns the audit head recorded in m.
func (m metaValues) head() (gatehouse.AuditHead, error) {
	seq, err := m.int(keyHeadSeq)
	if err != nil {
		return gatehouse.AuditHead{}, err
	}
	return gatehouse.AuditHead{Seq: seq, Hash: m[keyHeadHash]}, nil
}

// base returns the audit base recorded in m.
func (m metaValues) base() (gatehouse.AuditBase, error) {
	seq, err := m.int(keyBaseSeq)
	if err != nil {
		return gatehouse.AuditBase{}, err
	}
	return gatehouse.AuditBase{Seq: seq, Hash: m[keyBaseHash], Retained: m[keyBaseKept]}, nil
}

// lockMeta locks the meta rows of keys for the rest of tx and returns their
// values and tx's transaction id.
func lockMeta(ctx context.Context, tx pgx.Tx, keys []string) (metaValues, string, error) {
	rows, err := tx.Query(ctx, `SELECT key, value, pg_current_xact_id()::text FROM meta
		WHERE key = ANY($1) ORDER BY key FOR UPDATE`, keys)
	if err != nil {
		return nil, "", err
	}
	meta := metaValues{}
	var key, value, xid string
	_, err = pgx.ForEachRow(rows, []any{&key, &value, &xid}, func() error {
		meta[key] = value
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if err := meta.complete(keys); err != nil {
		return nil, "", err
	}
	return meta, xid, nil
}

// readMeta returns the meta rows of keys.
func readMeta(ctx context.Context, tx pgx.Tx, keys ...string) (metaValues, error) {
	rows, err := tx.Query(ctx, `SELECT key, value FROM meta WHERE key = ANY($1)`, keys)
	if err != nil {
		return nil, err
	}
	meta := metaValues{}
	var key, value string
	_, err = pgx.ForEachRow(rows, []any{&key, &value}, func() error {
		meta[key] = value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return meta, meta.complete(keys)
}

// complete reports a key missing from m as corruption.
func (m metaValues) complete(keys []string) error {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("meta %s missing: %w", k, gatehouse.ErrCorrupt)
		}
	}
	return nil
}
