package policy

import (
	"fmt"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/money"
)

// ceilings reports descendant action settings looser than what an
// ancestor enforces (ActionSetting.Enforced): enabling an action an
// ancestor disables, dropping a confirmation it requires, raising or
// removing one of its limits, or counting in another currency or window.
// Each problem names the ancestor. Only the nearest enforced ancestor of
// each part is compared: it is itself checked against the ones above it.
func (v *validator) ceilings(tenants []gatehouse.Tenant) {
	byID := make(map[string]int, len(tenants))
	for i, t := range tenants {
		byID[t.ID] = i
	}
	for i, t := range tenants {
		for _, name := range sortedKeys(t.Actions) {
			own := t.Actions[name]
			path := fmt.Sprintf("tenants[%d].actions.%s", i, name)
			var offBy, confirmBy, limitsBy string
			var ceiling *gatehouse.ActionLimits
			seen := map[string]bool{t.ID: true}
			for p := t.Parent; p != "" && !seen[p]; {
				seen[p] = true
				j, ok := byID[p]
				if !ok {
					break
				}
				if set, ok := tenants[j].Actions[name]; ok && set.Enforced {
					if offBy == "" && set.Enabled != nil && !*set.Enabled {
						offBy = p
					}
					if confirmBy == "" && set.RequiresConfirmation != nil && *set.RequiresConfirmation {
						confirmBy = p
					}
					if limitsBy == "" && set.Limits != nil {
						limitsBy, ceiling = p, set.Limits
					}
				}
				p = tenants[j].Parent
			}
			if offBy != "" && own.Enabled != nil && *own.Enabled {
				v.addf(path+".enabled", "tenant %q disables %s for its subtree (enforced); a descendant cannot enable it", offBy, name)
			}
			if confirmBy != "" && own.RequiresConfirmation != nil && !*own.RequiresConfirmation {
				v.addf(path+".requires_confirmation", "tenant %q requires confirmation of %s for its subtree (enforced); a descendant cannot drop it", confirmBy, name)
			}
			if ceiling != nil && own.Limits != nil {
				v.withinCeiling(path+".limits", *own.Limits, *ceiling, limitsBy)
			}
		}
	}
}

// withinCeiling reports each limit of l looser than ceiling's, which
// tenant by enforces.
func (v *validator) withinCeiling(path string, l, ceiling gatehouse.ActionLimits, by string) {
	own, p1 := money.Limits(l)
	ceil, p2 := money.Limits(ceiling)
	if len(p1) > 0 || len(p2) > 0 {
		return // reported where they are written
	}
	at := fmt.Sprintf("the ceiling tenant %q enforces for its subtree", by)
	amounts := ceil.MaxAmount != 0 || ceil.MaxTotalAmount != 0
	sameCurrency := !amounts || own.Currency == ceil.Currency
	if !sameCurrency {
		v.addf(path+".currency", "%q is not %q, the currency of %s", own.Currency, ceil.Currency, at)
	}
	sameWindow := ceil.Window == 0 || own.Window == ceil.Window
	if !sameWindow {
		v.addf(path+".window", "%q is not %q, the window of %s", l.Window, ceiling.Window, at)
	}
	for _, f := range []struct {
		field       string
		own, ceil   int64
		ownT, ceilT gatehouse.Decimal
		comparable  bool
	}{
		{"max_amount", own.MaxAmount, ceil.MaxAmount, l.MaxAmount, ceiling.MaxAmount, sameCurrency},
		{"max_percentage", own.MaxPercentage, ceil.MaxPercentage, l.MaxPercentage, ceiling.MaxPercentage, true},
		{"max_count", own.MaxCount, ceil.MaxCount, count(l.MaxCount), count(ceiling.MaxCount), sameWindow},
		{"max_total_amount", own.MaxTotalAmount, ceil.MaxTotalAmount, l.MaxTotalAmount, ceiling.MaxTotalAmount, sameCurrency && sameWindow},
	} {
		switch {
		case f.ceil == 0 || !f.comparable:
		case f.own == 0:
			v.addf(path+"."+f.field, "no %s is above %s, the %s of %s", f.field, f.ceilT, f.field, at)
		case f.own > f.ceil:
			v.addf(path+"."+f.field, "%s is above %s, the %s of %s", f.ownT, f.ceilT, f.field, at)
		}
	}
}

func count(n *int64) gatehouse.Decimal {
	if n == nil {
		return ""
	}
	return gatehouse.Decimal(strconv.FormatInt(*n, 10))
}
