package engine

import (
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/gatehouse/gatehouse"
)

// conditionCostLimit bounds one condition's evaluation. A comparison costs a
// few units; the limit stops comprehensions over huge request-supplied lists.
const conditionCostLimit = 100_000

// celEnv is the environment every condition compiles in; see the package
// documentation. It is built once, on first use.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	dynMap := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable("subject", dynMap),
		cel.Variable("resource", dynMap),
		cel.Variable("action", dynMap),
		cel.Variable("context", dynMap),
		cel.Variable("tenant", dynMap),
		cel.CrossTypeNumericComparisons(true),
	)
})

// compileCondition type-checks expr and plans it. It rejects expressions
// whose type is known not to be bool; dyn results are checked at evaluation.
func compileCondition(expr string) (cel.Program, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("condition environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, gatehouse.Invalidf("condition %q: %v", expr, iss.Err())
	}
	if out := ast.OutputType(); !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return nil, gatehouse.Invalidf("condition %q: result is %s, want bool", expr, out)
	}
	// The cost limit bounds evaluation; an interrupt check frequency would
	// only matter for context-cancelled evaluation, which Check does not use.
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(conditionCostLimit))
	if err != nil {
		return nil, gatehouse.Invalidf("condition %q: %v", expr, err)
	}
	return prg, nil
}

// evalCondition runs a condition; anything but a bool result is an error.
func evalCondition(prg cel.Program, vars map[string]any) (bool, error) {
	out, _, err := prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("result is %s, want bool", out.Type())
	}
	return bool(b), nil
}

// conditionVars builds the variables a condition of subject sub sees.
// Request-supplied subject properties apply only to the request's subject
// (own is true), never to the user an agent acts for.
func (s *Snapshot) conditionVars(q *query, sub *subject, own bool, perm int32) map[string]any {
	var reqProps map[string]any
	if own {
		reqProps = q.req.SubjectProperties
	}
	props := make(map[string]any, len(reqProps)+len(sub.attrs))
	for k, v := range reqProps {
		props[k] = v
	}
	for k, v := range sub.attrs {
		props[k] = v
	}
	subj := map[string]any{
		"type":       string(sub.ref.Type),
		"id":         sub.ref.ID,
		"properties": props,
	}
	if sub.ref.Type == gatehouse.SubjectUser {
		subj["email"] = sub.ref.ID
	}
	tenant := map[string]any{"id": "", "properties": map[string]any{}}
	if q.tenant >= 0 {
		t := &s.tenants[q.tenant]
		tenant["id"] = t.id
		tenant["properties"] = orEmpty(t.attrs)
	}
	return map[string]any{
		"subject": subj,
		"resource": map[string]any{
			"type":       q.req.Resource.Type,
			"id":         q.req.Resource.ID,
			"properties": s.resourceProperties(q),
		},
		"action": map[string]any{
			"name":       s.perms[perm].name,
			"properties": orEmpty(q.req.ActionProperties),
		},
		"context": orEmpty(q.req.Context),
		"tenant":  tenant,
	}
}

// resourceProperties are the stored attributes of the request's resource
// overlaid with the request's resource properties (the request wins: the
// application that sends them owns its resources' data).
func (s *Snapshot) resourceProperties(q *query) map[string]any {
	if q.resource < 0 || len(s.resources[q.resource].attrs) == 0 {
		return orEmpty(q.req.Resource.Properties)
	}
	stored := s.resources[q.resource].attrs
	props := make(map[string]any, len(stored)+len(q.req.Resource.Properties))
	for k, v := range stored {
		props[k] = v
	}
	for k, v := range q.req.Resource.Properties {
		props[k] = v
	}
	return props
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
