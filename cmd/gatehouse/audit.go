package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/audit"
)

// defaultCheckpointEvery is how often serve signs the audit head.
const defaultCheckpointEvery = 10 * time.Minute

func auditKeyFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.auditKey, "audit-key", "", "Ed25519 private key (PEM, from gatehouse audit keygen) that signs audit checkpoints; keep it outside the database (env GATEHOUSE_AUDIT_KEY)")
}

func checkpointFlags(fs *flag.FlagSet, o *options) {
	auditKeyFlag(fs, o)
	fs.DurationVar(&o.checkpointEvery, "audit-checkpoint-interval", defaultCheckpointEvery, "with --audit-key: how often to sign the audit chain's head (and once at shutdown)")
	fs.DurationVar(&o.retention, "decision-log-retention", 0, "delete decision events older than this (e.g. 720h), keeping the chain verifiable; 0 keeps them forever")
}

// loadAuditKey reads --audit-key (or GATEHOUSE_AUDIT_KEY); nil if neither
// names a file.
func (m *Main) loadAuditKey() (ed25519.PrivateKey, error) {
	path := m.opts.auditKey
	if path == "" {
		path = os.Getenv("GATEHOUSE_AUDIT_KEY")
	}
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usage("bad_value", "Flag", "--audit-key", "Detail", err)
	}
	key, err := audit.ParsePrivateKey(b)
	if err != nil {
		return nil, usage("value_error", "Flag", "--audit-key", "Value", path, "Detail", err)
	}
	return key, nil
}

func runAuditKeygen(ctx context.Context, m *Main) error {
	if m.opts.output == "" {
		return usage("key_out_required")
	}
	priv, pub, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	pubPath := m.opts.output + ".pub"
	for _, f := range []struct {
		path string
		b    []byte
		mode os.FileMode
	}{{m.opts.output, priv, 0o600}, {pubPath, pub, 0o644}} {
		if err := writeNew(f.path, f.b, f.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(m.Stdout, "audit key %s written to %s (private: keep it off the database host's backups) and %s (public: for audit verify)\n",
		keyIDOf(priv), m.opts.output, pubPath)
	return nil
}

// writeNew writes b to a file that must not exist yet.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return usage("key_exists", "Path", path)
	}
	if err != nil {
		return usage("file", "Detail", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func keyIDOf(priv ed25519.PrivateKey) string { return audit.KeyID(priv.Public().(ed25519.PublicKey)) }

func runAuditCheckpoint(ctx context.Context, m *Main) error {
	key, err := m.loadAuditKey()
	if err != nil {
		return err
	}
	if key == nil {
		return usage("audit_key_required")
	}
	c, ok, err := m.svc.Checkpoint(ctx, key, audit.CheckpointManual)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintln(m.Stdout, "nothing new to sign: the audit chain is empty or its head is a checkpoint")
		return nil
	}
	fmt.Fprintf(m.Stdout, "signed %s with key %s: hash %s\n", c, c.KeyID, c.Hash)
	return nil
}

func runAuditCheckpoints(ctx context.Context, m *Main) error {
	cps, err := m.svc.Checkpoints(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, c := range cps {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	return nil
}

// readVerifyInputs reads --public-key and --checkpoints for audit verify.
func (m *Main) readVerifyInputs() (ed25519.PublicKey, []audit.Checkpoint, error) {
	o := m.opts
	if o.publicKey == "" {
		if o.checkpoints != "" {
			return nil, nil, usage("needs", "Flag", "--checkpoints", "Other", "--public-key")
		}
		return nil, nil, nil
	}
	b, err := os.ReadFile(o.publicKey)
	if err != nil {
		return nil, nil, usage("bad_value", "Flag", "--public-key", "Detail", err)
	}
	pub, err := audit.ParsePublicKey(b)
	if err != nil {
		return nil, nil, usage("value_error", "Flag", "--public-key", "Value", o.publicKey, "Detail", err)
	}
	if o.checkpoints == "" {
		return pub, nil, nil
	}
	f, err := os.Open(o.checkpoints)
	if err != nil {
		return nil, nil, usage("bad_value", "Flag", "--checkpoints", "Detail", err)
	}
	defer f.Close()
	cps, err := audit.ReadCheckpoints(f)
	if err != nil {
		return nil, nil, usage("value_error", "Flag", "--checkpoints", "Value", o.checkpoints, "Detail", err)
	}
	if len(cps) == 0 {
		return nil, nil, usage("no_checkpoint", "Path", o.checkpoints)
	}
	return pub, cps, nil
}

// checkpointer signs the audit head every interval until ctx ends.
func (m *Main) checkpointer(ctx context.Context, key ed25519.PrivateKey, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.signCheckpoint(ctx, key, audit.CheckpointInterval, logger)
		}
	}
}

// signCheckpoint signs one checkpoint for reason and logs the outcome.
func (m *Main) signCheckpoint(ctx context.Context, key ed25519.PrivateKey, reason string, logger *slog.Logger) {
	c, ok, err := m.svc.Checkpoint(ctx, key, reason)
	switch {
	case err != nil && ctx.Err() == nil:
		logger.Warn("audit checkpoint failed", "reason", reason, "err", err)
	case ok:
		logger.Info("audit checkpoint signed", "seq", c.Seq, "reason", reason, "key", c.KeyID)
	}
}

func runAuditPrune(ctx context.Context, m *Main) error {
	if m.opts.retention <= 0 {
		return usage("older_than")
	}
	key, err := m.loadAuditKey()
	if err != nil {
		return err
	}
	n, err := m.svc.PruneDecisions(ctx, m.opts.retention, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "pruned %d decision events older than %v", n, m.opts.retention)
	if n > 0 && key == nil {
		fmt.Fprint(m.Stdout, "; no --audit-key: no checkpoint signs the new beginning, so audit verify --public-key will refuse it until one does (gatehouse audit checkpoint)")
	}
	fmt.Fprintln(m.Stdout)
	return nil
}

// pruneEvery is how often serve applies --decision-log-retention: twice per
// retention period, at most hourly.
func pruneEvery(retention time.Duration) time.Duration { return min(retention/2, time.Hour) }

// pruner applies --decision-log-retention now and then every pruneEvery
// until ctx ends.
func (m *Main) pruner(ctx context.Context, retention time.Duration, key ed25519.PrivateKey, logger *slog.Logger) {
	t := time.NewTicker(pruneEvery(retention))
	defer t.Stop()
	for {
		n, err := m.svc.PruneDecisions(ctx, retention, key)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("decision log retention: pruning failed", "err", err)
		case n > 0:
			logger.Info("decision log retention: pruned old decisions", "decisions", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
