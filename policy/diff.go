package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

type objectKey struct {
	kind gatehouse.Kind
	id   string
}

// Diff returns the object changes that turn before into after, in document
// order (kind, then tier or id). Objects whose body and position are equal
// do not change; a nil policy is empty. Two objects of one kind with the
// same id in either policy are ErrInvalid: Validate reports them first.
func Diff(before, after *gatehouse.Policy) ([]gatehouse.Change, error) {
	bobjs, err := uniqueObjects(before)
	if err != nil {
		return nil, err
	}
	aobjs, err := uniqueObjects(after)
	if err != nil {
		return nil, err
	}
	old := make(map[objectKey]gatehouse.Object, len(bobjs))
	for _, o := range bobjs {
		old[objectKey{o.Kind, o.ID}] = o
	}
	var changes []gatehouse.Change
	for _, o := range aobjs {
		k := objectKey{o.Kind, o.ID}
		prev, ok := old[k]
		delete(old, k)
		switch {
		case !ok:
			changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, After: o.Body})
		case prev.Pos != o.Pos || !bytes.Equal(prev.Body, o.Body):
			changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, Before: prev.Body, After: o.Body})
		}
	}
	for _, o := range bobjs {
		if _, gone := old[objectKey{o.Kind, o.ID}]; gone {
			changes = append(changes, gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, Before: o.Body})
		}
	}
	gatehouse.SortChanges(changes)
	return changes, nil
}

// uniqueObjects returns p's objects, refusing two with one kind and id.
func uniqueObjects(p *gatehouse.Policy) ([]gatehouse.Object, error) {
	if p == nil {
		return nil, nil
	}
	objs, err := p.Objects()
	if err != nil {
		return nil, err
	}
	seen := make(map[objectKey]bool, len(objs))
	for _, o := range objs {
		k := objectKey{o.Kind, o.ID}
		if seen[k] {
			return nil, gatehouse.Invalidf("diff: duplicate %s %q", o.Kind, o.ID)
		}
		seen[k] = true
	}
	return objs, nil
}

// FormatDiff renders changes for people: "+ kind id" for a new object,
// "- kind id" for a removed one and "~ kind id" with one line per changed
// field for an update.
func FormatDiff(changes []gatehouse.Change) string {
	if len(changes) == 0 {
		return "no changes\n"
	}
	var b strings.Builder
	for _, c := range changes {
		sign := map[gatehouse.Op]string{gatehouse.OpCreate: "+", gatehouse.OpDelete: "-", gatehouse.OpUpdate: "~"}[c.Op()]
		if c.Kind == gatehouse.KindSettings {
			fmt.Fprintf(&b, "%s settings\n", sign)
		} else {
			fmt.Fprintf(&b, "%s %s %s\n", sign, c.Kind, c.ID)
		}
		if c.Op() != gatehouse.OpUpdate {
			continue
		}
		var before, after map[string]json.RawMessage
		if json.Unmarshal(c.Before, &before) != nil || json.Unmarshal(c.After, &after) != nil {
			continue
		}
		keys := make([]string, 0, len(before)+len(after))
		for k := range before {
			keys = append(keys, k)
		}
		for k := range after {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			if bytes.Equal(before[k], after[k]) {
				continue
			}
			fmt.Fprintf(&b, "    %s: %s → %s\n", k, showValue(before[k]), showValue(after[k]))
		}
		if bytes.Equal(c.Before, c.After) {
			// Only a plan's tier can change without its body.
			fmt.Fprintf(&b, "    now tier %d\n", c.Pos+1)
		}
	}
	return b.String()
}

func showValue(raw json.RawMessage) string {
	if raw == nil {
		return "(none)"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}
