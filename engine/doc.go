// Package engine compiles a gatehouse.Policy into an immutable Snapshot and
// decides requests from it. It does no I/O; an instance keeps the current
// snapshot in a Holder and swaps it when the policy version moves.
//
// # Compiling
//
// Compile interns every id (permission, role, tenant, user, agent, tool) to
// an int32, turns roles and bundles into permission bitsets, stores each
// distinct bitset once, numbers the tenant forest depth-first so that "is T
// in the subtree of S" is two comparisons, resolves each tenant's nearest
// plan and each feature's lowest plan, and compiles every distinct CEL
// condition once. What Check reads about a subject is one record in one
// pool: flags, plan and visibility, the user's email, then its
// unconditional role assignments and grants (8 bytes each), which Check
// scans; an email table's slot points at the record, so that a decision
// about one of a million users reads the slot and then a few adjacent
// cache lines. A subject with more than a handful of sources holds merged
// bitsets instead, one per scope.
//
// # Deciding
//
// Check follows steps 1–5 of the decision order in DESIGN.md:
//
//  1. invalid_request, unknown_subject, unknown_permission, unknown_tenant;
//  2. a superuser user is allowed (reason superuser);
//  3. a named tenant must be in the subject's visible set (its own exact
//     list, or settings.default_tenants when it has none);
//  4. the permission must be held through a role (with its bundles) or a
//     direct grant, global or scoped to an ancestor-or-self of the tenant;
//     unconditional sources are tried first, then conditional ones;
//  5. the permission's feature must be in the effective plan: the tenant's
//     (inherited from the nearest ancestor), else the user's own, else the
//     lowest plan.
//
// A user is named by email (case-insensitive) or by one of its aliases
// (exact). A request about a declared resource that belongs to a tenant is
// decided in that tenant unless the request names one.
//
// When an agent acts for a user (Request.OnBehalfOf), the user is decided
// first and then the agent; both must be allowed, and a denial names the
// subject it denied in Decision.Subject. Only an agent may act for a user.
//
// Check and CheckTool do not allocate unless a condition must be evaluated.
// Explain and ExplainTool make the same decisions through the same code with
// a tracer that records each rule. Effective answers every permission and
// tool at once, as Check would for a request without resource or context.
//
// # Deriving
//
// Derive gives the snapshot Compile would give after a change of users and
// agents (SubjectDelta: upserts and removals) without compiling: it builds
// the records of the subjects the change names and shares everything else
// with the snapshot it starts from, which does not change. It appends the
// new records to the pool, past the end the snapshot it starts from reads;
// the record offsets, the subjects and the email table's slots are paged
// (1,024 a page), so a derivation copies the pages it changes, and appends
// the subjects it adds after the compiled ones. A compiled user's slot
// follows its record. A removed subject gets a record marked removed (its
// state, in the record's flags); the ids derivations added or moved (added
// subjects' emails and agent ids, the aliases of users whose aliases
// changed) are in a copy-on-write overlay of 64 shards that lookups
// consult only for what the email table and the compiled maps no longer
// answer, so a live user's lookup costs what it costs on a compiled
// snapshot: the slot and the record, whose state it reads. A lineage
// (a Compile and the snapshots derived from it) derives a bounded number
// of records and ids; past that, or for a condition the Compile did not
// see, Derive declines and the caller compiles. DerivableDelta says so
// without deriving.
//
// # Conditions
//
// A role assignment or grant may carry a CEL condition (cel.dev/cel-go). It
// is type-checked at Compile: a syntax error, an unknown variable or a
// result that is known not to be bool is an error wrapping
// gatehouse.ErrInvalid. At evaluation, false, a non-bool result, an error
// (such as a missing map key) or exceeding the cost limit all mean the
// source does not apply; if no source grants the permission and at least one
// condition was tried, the reason is condition_failed.
//
// Conditions see five variables, each of type map(string, dyn):
//
//	subject   {type, id, properties, email}
//	          id is the normalized email for users, the agent id for agents;
//	          email is present for users only. properties are the request's
//	          SubjectProperties overlaid with the subject's stored Attributes
//	          (stored wins). A user an agent acts for gets stored Attributes
//	          only: request properties describe the request's subject.
//	resource  {type, id, properties}   from Request.Resource; for a
//	          resource the policy declares (Policy.Resources), properties are
//	          its stored Attributes overlaid with the request's properties
//	          (the request wins: the application owns its resources' data)
//	action    {name, properties}       name is the permission being decided;
//	                                   properties are Request.ActionProperties
//	context   Request.Context
//	tenant    {id, properties}         the request's tenant and its stored
//	                                   Attributes; id is "" without a tenant
//
// Absent maps are empty, never null. Values are what encoding/json decodes
// into any, or Go values CEL can convert; numbers compare across int, uint
// and double (context.amount < 100 holds for a JSON 99.5). Examples:
//
//	resource.properties.ownerID == subject.id
//	context.amount < 100
//	tenant.properties.region == "eu" && "support" in subject.properties.teams
//
// Evaluation is bounded by a cost limit (conditionCostLimit), which stops
// comprehensions over large request-supplied lists.
package engine
