// Package service is the one layer every surface (CLI, HTTP, chat and MCP
// gateways) calls. It keeps the compiled snapshot current, answers decisions
// from it, and turns every administrative operation into a validated policy
// change that the store commits together with its audit events.
package service

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/policy"
)

// Config configures a Service.
type Config struct {
	// BootstrapSuperuser, when set, is made a superuser if the stored policy
	// has none (a fresh store), so someone can administer it.
	BootstrapSuperuser string
	Clock              gatehouse.Clock
	Logger             *slog.Logger
	// MaxRetries bounds how often a change is recomputed after another
	// writer committed first.
	MaxRetries int
	// ConfirmationTTL is how long a pending agent action may be confirmed;
	// zero means guard.DefaultConfirmationTTL.
	ConfirmationTTL time.Duration
	// Catalog localizes the answers' messages; nil means the embedded
	// catalogs (locale.New).
	Catalog *locale.Catalog
}

// DefaultConfig returns the configuration used when a field is left zero.
func DefaultConfig() Config {
	return Config{Clock: gatehouse.SystemClock{}, Logger: slog.New(slog.DiscardHandler), MaxRetries: 10}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if strings.TrimSpace(c.BootstrapSuperuser) != "" {
		if _, err := gatehouse.ParseSubject("user:" + c.BootstrapSuperuser); err != nil {
			return fmt.Errorf("bootstrap superuser: %w", err)
		}
	}
	if c.MaxRetries < 0 {
		return gatehouse.Invalidf("max retries %d is negative", c.MaxRetries)
	}
	return nil
}

// Service decides from an in-memory snapshot and changes the policy through
// the store. It is safe for concurrent use.
type Service struct {
	store gatehouse.Store
	cfg   Config
	snap  engine.Holder
	guard *guard.Guard
	// decisions, when set, records every answer (see DecisionLog).
	decisions atomic.Pointer[DecisionLog]
	// feed tells subscribers about changes (Subscribe).
	feed feed
	// mu serializes this process's writers; writers in other processes are
	// caught by the store's version check and retried.
	mu sync.Mutex
	// current is the stored policy of the newest version this process
	// loaded or committed, which the next change starts from instead of
	// loading the store (see base); guarded by mu.
	current *versioned
	// queue holds the single-subject writes waiting for mu (updateSubject),
	// sectionQueue the writes of other single objects (updateSection);
	// guarded by queueMu.
	queueMu      sync.Mutex
	queue        []*subjectWrite
	sectionQueue []*subjectWrite
}

// Open loads and compiles the stored policy and bootstraps a superuser if
// configured and none exists.
func Open(ctx context.Context, store gatehouse.Store, cfg Config) (*Service, error) {
	def := DefaultConfig()
	if cfg.Clock == nil {
		cfg.Clock = def.Clock
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = def.MaxRetries
	}
	if cfg.Catalog == nil {
		c, err := locale.New()
		if err != nil {
			return nil, err
		}
		cfg.Catalog = c
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{store: store, cfg: cfg}
	g, err := guard.New(feedStore{ActionStore: store, s: s}, s.Snapshot, guard.Config{ConfirmationTTL: cfg.ConfirmationTTL, Clock: cfg.Clock, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s.guard = g
	p, _, err := s.reload(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.BootstrapSuperuser) != "" && len(p.Superusers()) == 0 {
		email := gatehouse.NormalizeEmail(cfg.BootstrapSuperuser)
		if _, err := s.Update(ctx, "system", "user.bootstrap", func(p *gatehouse.Policy) error {
			return promote(p, email)
		}); err != nil {
			return nil, fmt.Errorf("bootstrap superuser %s: %w", email, err)
		}
		cfg.Logger.Info("bootstrapped superuser", "email", email)
	}
	return s, nil
}

// Snapshot returns the current compiled policy; it never returns nil after
// Open. A nil Service has none, and a nil snapshot denies everything.
func (s *Service) Snapshot() *engine.Snapshot {
	if s == nil {
		return nil
	}
	return s.snap.Load()
}

// Effective returns everything subject may do in tenant.
func (s *Service) Effective(subject gatehouse.SubjectRef, tenant string) (gatehouse.Effective, error) {
	return s.Snapshot().Effective(subject, tenant)
}

// Reload rebuilds the snapshot if the stored policy version moved (another
// process wrote). It reports whether it swapped.
func (s *Service) Reload(ctx context.Context) (bool, error) {
	// Serialized with writers so an older snapshot never replaces a newer one.
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.store.PolicyVersion(ctx)
	if err != nil {
		return false, err
	}
	if cur := s.snap.Load(); cur != nil && cur.Version() == v {
		return false, nil
	}
	caught, err := s.catchUp(ctx, v)
	if err != nil {
		s.cfg.Logger.Warn("catching up by change failed; reloading the whole policy", "version", v, "err", err)
	}
	if caught {
		return true, nil
	}
	_, _, err = s.reload(ctx)
	return err == nil, err
}

func (s *Service) reload(ctx context.Context) (*gatehouse.Policy, int64, error) {
	p, v, seq, err := s.loadKept(ctx)
	if err != nil {
		return nil, 0, err
	}
	snap, err := engine.Compile(p, v)
	if err != nil {
		return nil, 0, fmt.Errorf("compile stored policy version %d: %w", v, err)
	}
	s.keep(p, v, false, seq)
	s.swap(snap)
	return p, v, nil
}

func (s *Service) load(ctx context.Context) (*gatehouse.Policy, int64, error) {
	if sc, ok := s.store.(gatehouse.PolicyScanner); ok {
		// Each body is decoded as it is read, not held until all are.
		b := gatehouse.NewPolicyBuilder()
		v, err := sc.ScanPolicy(ctx, b.Add)
		if err != nil {
			return nil, 0, fmt.Errorf("load policy: %w", err)
		}
		return b.Policy(), v, nil
	}
	objs, v, err := s.store.LoadPolicy(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("load policy: %w", err)
	}
	p, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		return nil, 0, err
	}
	return p, v, nil
}

// Policy returns the stored policy and its version.
func (s *Service) Policy(ctx context.Context) (*gatehouse.Policy, int64, error) {
	return s.load(ctx)
}

// Result is what a change did.
type Result struct {
	Changes []gatehouse.Change `json:"changes"`
	// Version is the policy version after the change (unchanged when there
	// were no changes or on a dry run).
	Version int64 `json:"version"`
	DryRun  bool  `json:"dry_run,omitempty"`
}

// Update is the one write path: it runs fn on a copy of the stored policy,
// normalizes and validates the result, refuses to remove the last
// superuser, compiles it, and commits the difference with one audit event
// per changed object, all or nothing. action names the operation in the
// audit trail ("policy.apply", "user.promote", …). fn may run more than
// once if another writer commits first, so it must depend only on p, and
// must not leave p sharing memory with anything mutated later, nor with
// anything the caller reads later: the committed policy is what the next
// change starts from, and single-subject changes replace its entries in
// place (updateSubject).
func (s *Service) Update(ctx context.Context, actor, action string, fn func(p *gatehouse.Policy) error) (Result, error) {
	return s.update(ctx, actor, action, false, fn)
}

// DryRun computes what Update would change without committing.
func (s *Service) DryRun(ctx context.Context, fn func(p *gatehouse.Policy) error) (Result, error) {
	return s.update(ctx, "", "", true, fn)
}

func (s *Service) update(ctx context.Context, actor, action string, dryRun bool, fn func(p *gatehouse.Policy) error) (Result, error) {
	var res Result
	err := s.write(ctx, action, func() (*engine.Snapshot, error) {
		var (
			snap *engine.Snapshot
			err  error
		)
		res, snap, err = s.tryUpdate(ctx, actor, action, dryRun, fn)
		return snap, err
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// write runs try under the writers' lock, again while another writer
// commits first (ErrConflict), and makes the snapshot try returns, if any,
// the current one.
func (s *Service) write(ctx context.Context, action string, try func() (*engine.Snapshot, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(ctx, action, try)
}

// writeLocked is write for a caller that holds mu.
func (s *Service) writeLocked(ctx context.Context, action string, try func() (*engine.Snapshot, error)) error {
	for attempt := 0; ; attempt++ {
		snap, err := try()
		if errors.Is(err, gatehouse.ErrConflict) && attempt < s.cfg.MaxRetries {
			s.cfg.Logger.Debug("policy changed concurrently, retrying", "action", action, "attempt", attempt+1)
			// Jittered backoff so competing processes stop colliding.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(1+rand.IntN(4*(attempt+1))) * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
		if snap != nil {
			s.swap(snap)
		}
		return nil
	}
}

// planned is a validated change of the stored policy, ready to commit.
type planned struct {
	base    int64
	after   *gatehouse.Policy
	changes []gatehouse.Change
	// snap is after compiled as version base+1.
	snap *engine.Snapshot
}

// plan runs fn on a copy of the stored policy (the one this process keeps,
// if the store is still at its version), normalizes and validates the
// result, refuses to remove the last superuser, compiles it and computes
// the changes. The caller holds mu.
func (s *Service) plan(ctx context.Context, fn func(p *gatehouse.Policy) error) (planned, error) {
	cur, err := s.base(ctx)
	if err != nil {
		return planned{}, err
	}
	before, base := cur.policy(), cur.v
	after, err := clonePolicy(before)
	if err != nil {
		return planned{}, err
	}
	if err := fn(after); err != nil {
		return planned{}, err
	}
	policy.Normalize(after)
	changes, err := diffPolicies(before, after)
	if err != nil {
		return planned{}, err
	}
	// Who may make the change is decided first: a caller gets no
	// validation problems about what it may not change.
	if err := s.authorizeChanges(ctx, cur, changes); err != nil {
		return planned{}, err
	}
	if problems := validateChange(cur, after, changes); len(problems) > 0 {
		return planned{}, &policy.Error{Problems: problems}
	}
	// Validated first, so problems have the paths a fresh load gives.
	sortByID(after)
	if len(before.Superusers()) > 0 && len(after.Superusers()) == 0 {
		return planned{}, fmt.Errorf("%w: promote another user first", gatehouse.ErrLastSuperuser)
	}
	// Compiled even when nothing changes, so a dry run reports what a
	// commit would refuse.
	snap, err := engine.Compile(after, base+1)
	if err != nil {
		return planned{}, err
	}
	return planned{base: base, after: after, changes: changes, snap: snap}, nil
}

// committed returns the snapshot to install after pl was committed at
// version v, and keeps its policy for the next change: none if nothing
// changed, pl's own if no other writer's version got in between, else one
// compiled from the store.
func (s *Service) committed(ctx context.Context, pl planned, v int64, events []gatehouse.AuditEvent) (*engine.Snapshot, error) {
	switch v {
	case pl.base:
		return nil, nil
	case pl.base + 1:
		s.keep(pl.after, v, true, lastSeq(events))
		return pl.snap, nil
	}
	return s.compileStored(ctx)
}

func (s *Service) tryUpdate(ctx context.Context, actor, action string, dryRun bool, fn func(p *gatehouse.Policy) error) (Result, *engine.Snapshot, error) {
	pl, err := s.plan(ctx, fn)
	if err != nil {
		return Result{}, nil, err
	}
	return s.commitPlanned(ctx, actor, action, dryRun, pl)
}

// commitPlanned commits pl, unless it changes nothing or is a dry run,
// with one audit event per change, and returns the snapshot to install.
func (s *Service) commitPlanned(ctx context.Context, actor, action string, dryRun bool, pl planned) (Result, *engine.Snapshot, error) {
	res := Result{Changes: pl.changes, Version: pl.base, DryRun: dryRun}
	if len(pl.changes) == 0 || dryRun {
		return res, nil, nil
	}
	events, err := s.changeEvents(actor, action, pl.base+1, pl.changes)
	if err != nil {
		return Result{}, nil, err
	}
	v, err := s.store.CommitPolicy(ctx, pl.base, pl.changes, events)
	if err != nil {
		return Result{}, nil, fmt.Errorf("%s: %w", action, err)
	}
	snap, err := s.committed(ctx, pl, v, events)
	if err != nil {
		return Result{}, nil, err
	}
	res.Version = v
	return res, snap, nil
}

func (s *Service) compileStored(ctx context.Context) (*engine.Snapshot, error) {
	p, v, seq, err := s.loadKept(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := engine.Compile(p, v)
	if err != nil {
		return nil, err
	}
	s.keep(p, v, false, seq)
	return snap, nil
}

// changeEvents returns one audit event per change, each binding the object
// as stored to the chain by its hash (see audit.ChangeDetail).
func (s *Service) changeEvents(actor, action string, version int64, changes []gatehouse.Change) ([]gatehouse.AuditEvent, error) {
	now := s.cfg.Clock.Now()
	events := make([]gatehouse.AuditEvent, 0, len(changes))
	for _, c := range changes {
		d := audit.ChangeDetail{Op: c.Op(), Version: version}
		if c.After != nil {
			d.ObjectHash = audit.ObjectHash(gatehouse.Object{Kind: c.Kind, ID: c.ID, Pos: c.Pos, Body: c.After})
		}
		detail, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		events = append(events, gatehouse.AuditEvent{
			Time:   now,
			Actor:  actor,
			Action: action,
			Target: string(c.Kind) + "/" + c.ID,
			Before: c.Before,
			After:  c.After,
			Detail: detail,
		})
	}
	return events, nil
}

// keepBilledPlans gives the tenants and users of merged whose plan a
// billing customer pays for the plan they have in stored, whatever the
// applied document says: billing owns those plans (webhooks set them, and
// `plan set` overrides them), so that applying a document written before a
// customer upgraded never downgrades it. Only subjects whose plan the
// document would change are looked up. Each plan it sets back is recorded
// in kept, if not nil, with the plan merged asked for (restorePlans).
func (s *Service) keepBilledPlans(ctx context.Context, stored, merged *gatehouse.Policy, kept *[]keptPlan) error {
	keep := func(kind gatehouse.Kind, id, old string, plan *string) error {
		asked := *plan
		if err := s.keepBilledPlan(ctx, kind, id, old, plan); err != nil {
			return err
		}
		if kept != nil && *plan != asked {
			*kept = append(*kept, keptPlan{kind: kind, id: id, asked: asked})
		}
		return nil
	}
	tenants := make(map[string]string, len(stored.Tenants))
	for _, t := range stored.Tenants {
		tenants[t.ID] = t.Plan
	}
	for i := range merged.Tenants {
		t := &merged.Tenants[i]
		if old, ok := tenants[t.ID]; ok {
			if err := keep(gatehouse.KindTenant, t.ID, old, &t.Plan); err != nil {
				return err
			}
		}
	}
	users := make(map[string]string, len(stored.Users))
	for _, u := range stored.Users {
		users[u.Email] = u.Plan
	}
	for i := range merged.Users {
		u := &merged.Users[i]
		if old, ok := users[u.Email]; ok {
			if err := keep(gatehouse.KindUser, u.Email, old, &u.Plan); err != nil {
				return err
			}
		}
	}
	return nil
}

// keptPlan is a plan keepBilledPlans set back: the tenant's or user's and
// the one the document asked for.
type keptPlan struct {
	kind      gatehouse.Kind
	id, asked string
}

// restorePlans gives the tenants and users of p the plans kept records
// the document asked for, undoing keepBilledPlans on a document that an
// earlier attempt merged in place (ApplyTaking), and empties kept.
func restorePlans(p *gatehouse.Policy, kept *[]keptPlan) {
	for _, k := range *kept {
		if plan := planOf(p, k.kind, k.id); plan != nil {
			*plan = k.asked
		}
	}
	*kept = (*kept)[:0]
}

// keepBilledPlan sets *plan, the plan a change gives tenant or user id, back
// to old, the plan it had, if a billing customer pays for it (see
// keepBilledPlans).
func (s *Service) keepBilledPlan(ctx context.Context, kind gatehouse.Kind, id, old string, plan *string) error {
	if plan == nil || *plan == old {
		return nil
	}
	subject := billing.Target{Kind: kind, ID: id}.String()
	billed, err := s.store.ListBillingCustomers(ctx, gatehouse.BillingCustomerFilter{Subject: subject, Limit: 1})
	if err != nil {
		return fmt.Errorf("billing customers of %s: %w", subject, err)
	}
	if len(billed) > 0 {
		s.cfg.Logger.Warn("kept the plan billing manages", "subject", subject, "plan", old,
			"requested_plan", *plan, "customer", billed[0].ID)
		*plan = old
	}
	return nil
}

// planOf points at the own plan of tenant or user id in p; nil if p has
// no such tenant or user.
func planOf(p *gatehouse.Policy, kind gatehouse.Kind, id string) *string {
	switch kind {
	case gatehouse.KindTenant:
		if t := p.Tenant(id); t != nil {
			return &t.Plan
		}
	case gatehouse.KindUser:
		if u := p.User(id); u != nil {
			return &u.Plan
		}
	}
	return nil
}

// ImportSeed000 upserts seed 000's permissions, actions (as bundles) and
// categories; any of the three may be nil.
func (s *Service) ImportSeed000(ctx context.Context, actor string, permissions, actions, categories []byte, dryRun bool) (Result, error) {
	fn := func(p *gatehouse.Policy) error {
		return policy.ImportSeed000(p, permissions, actions, categories)
	}
	if dryRun {
		return s.DryRun(ctx, fn)
	}
	return s.Update(ctx, actor, "policy.import", fn)
}

// ImportModuleRBAC syncs a module's rbac.json (seed 002): the module's
// permissions and default role assignments, leaving other modules alone.
func (s *Service) ImportModuleRBAC(ctx context.Context, actor, module string, data []byte, dryRun bool) (Result, error) {
	fn := func(p *gatehouse.Policy) error {
		return policy.ImportModuleRBAC(p, module, data)
	}
	if dryRun {
		return s.DryRun(ctx, fn)
	}
	return s.Update(ctx, actor, "policy.import", fn)
}

// VerifyAudit checks the whole audit chain.
func (s *Service) VerifyAudit(ctx context.Context) (audit.Report, error) {
	return s.verifyAudit(ctx, audit.Options{})
}

// VerifyAuditSigned is VerifyAudit that also checks signed checkpoints
// against the chain with pub: cps, kept outside the store, or, when cps is
// nil, the checkpoints the chain itself records.
func (s *Service) VerifyAuditSigned(ctx context.Context, pub ed25519.PublicKey, cps []audit.Checkpoint) (audit.Report, error) {
	stored, err := s.Checkpoints(ctx)
	if err != nil {
		return audit.Report{}, err
	}
	if cps == nil {
		cps = stored
	} else {
		// A checkpoint exported before the last prune cannot sign its base;
		// the retention checkpoint in the chain does.
		for _, c := range stored {
			if c.Base != nil {
				cps = append(cps, c)
			}
		}
	}
	return s.verifyAudit(ctx, audit.Options{PublicKey: pub, Checkpoints: cps})
}

// verifyAudit verifies the chain with opts and the stored policy against
// its change events.
func (s *Service) verifyAudit(ctx context.Context, opts audit.Options) (audit.Report, error) {
	objs, v, err := s.store.LoadPolicy(ctx)
	if err != nil {
		return audit.Report{}, err
	}
	opts.Objects, opts.StateVersion, opts.CheckState = objs, v, true
	return audit.VerifyWith(ctx, s.store, opts)
}

// Checkpoint signs the audit chain's head, and where a pruned chain begins,
// with key and records the checkpoint as an event of the chain. It reports
// false, recording nothing, when there is nothing new to sign: an empty
// chain, or a head that is a checkpoint of the same base.
func (s *Service) Checkpoint(ctx context.Context, key ed25519.PrivateKey, reason string) (audit.Checkpoint, bool, error) {
	head, err := s.store.AuditHead(ctx)
	if err != nil || head.Seq == 0 {
		return audit.Checkpoint{}, false, err
	}
	base, err := s.store.AuditBase(ctx)
	if err != nil {
		return audit.Checkpoint{}, false, err
	}
	last, err := s.store.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: head.Seq - 1, Limit: 1})
	if err != nil {
		return audit.Checkpoint{}, false, err
	}
	if len(last) == 1 && last[0].Action == audit.ActionCheckpoint {
		prev, err := audit.CheckpointOf(last[0])
		if err != nil {
			return audit.Checkpoint{}, false, err
		}
		if prev.Base == nil && base.Seq == 0 || prev.Base != nil && *prev.Base == base {
			return audit.Checkpoint{}, false, nil
		}
	}
	c := audit.SignFrom(key, base, head, s.cfg.Clock.Now(), reason)
	e, err := c.Event()
	if err != nil {
		return audit.Checkpoint{}, false, err
	}
	if err := s.store.AppendAudit(ctx, []gatehouse.AuditEvent{e}); err != nil {
		return audit.Checkpoint{}, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	return c, true, nil
}

// PruneDecisions deletes the decision events older than retention, keeping
// the chain verifiable (see gatehouse.AuditLog.PruneAudit), and, with a key,
// signs a checkpoint that marks where the chain now begins. It returns how
// many decisions it deleted.
func (s *Service) PruneDecisions(ctx context.Context, retention time.Duration, key ed25519.PrivateKey) (int64, error) {
	if retention <= 0 {
		return 0, gatehouse.Invalidf("decision log retention %v: must be positive", retention)
	}
	_, n, err := s.store.PruneAudit(ctx, decisionAction, s.cfg.Clock.Now().Add(-retention))
	if err != nil {
		return 0, fmt.Errorf("prune decisions: %w", err)
	}
	if n > 0 && key != nil {
		if _, _, err := s.Checkpoint(ctx, key, audit.CheckpointRetention); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Checkpoints returns the signed checkpoints the chain records, oldest
// first, unverified.
func (s *Service) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	cps := []audit.Checkpoint{}
	var after int64
	for {
		page, err := s.store.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: after, Action: audit.ActionCheckpoint, Limit: audit.MaxListLimit})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return cps, nil
		}
		for _, e := range page {
			c, err := audit.CheckpointOf(e)
			if err != nil {
				return nil, err
			}
			cps = append(cps, c)
		}
		after = page[len(page)-1].Seq
	}
}

// CheckWritable returns nil if the store could take a write now, else why
// not, wrapping gatehouse.ErrUnavailable (see gatehouse.Store).
func (s *Service) CheckWritable(ctx context.Context) error {
	return s.store.CheckWritable(ctx)
}

// ListAudit returns audit events matching f.
func (s *Service) ListAudit(ctx context.Context, f gatehouse.AuditFilter) ([]gatehouse.AuditEvent, error) {
	return s.store.ListAudit(ctx, f)
}

// VisibleTenants returns the tenants the caller may see, as a tenant
// switcher lists them, sorted by id: a user's own list, else
// settings.default_tenants (seed 003), also for a user the policy does not
// list; every tenant for a superuser; an agent's tenants. A caller without
// a subject (a shared token) sees none.
func (s *Service) VisibleTenants(caller gatehouse.Caller) []gatehouse.TenantSummary {
	snap := s.Snapshot()
	var ids []string
	switch caller.Subject.Type {
	case gatehouse.SubjectUser:
		ids = snap.VisibleTenants(caller.Subject.ID)
	case gatehouse.SubjectAgent:
		ids = snap.AgentTenants(caller.Subject.ID)
	}
	out := make([]gatehouse.TenantSummary, 0, len(ids))
	for _, id := range ids {
		if t, ok := snap.Tenant(id); ok {
			out = append(out, t)
		}
	}
	return out
}
