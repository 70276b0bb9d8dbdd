package service

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Operations on single policy objects — a role, a tenant, a user — for
// the REST API. Each write is one validated, audited policy change, exactly
// like a `gatehouse apply` that touches one object: a user's or agent's
// through updateSubject, any other through updateSection.

// Object returns the stored object of kind with id (a user's email is
// normalized), or ErrNotFound.
func (s *Service) Object(ctx context.Context, kind gatehouse.Kind, id string) (gatehouse.Object, error) {
	p, _, err := s.load(ctx)
	if err != nil {
		return gatehouse.Object{}, err
	}
	objs, err := p.Objects()
	if err != nil {
		return gatehouse.Object{}, err
	}
	id = objectID(kind, id)
	i := slices.IndexFunc(objs, func(o gatehouse.Object) bool { return o.Kind == kind && o.ID == id })
	if i < 0 {
		return gatehouse.Object{}, gatehouse.NotFoundf("%s %q", kind, id)
	}
	return objs[i], nil
}

// ObjectsOf returns every stored object of kind in document order, and the
// policy version they were read at.
func (s *Service) ObjectsOf(ctx context.Context, kind gatehouse.Kind) ([]gatehouse.Object, int64, error) {
	p, v, err := s.load(ctx)
	if err != nil {
		return nil, 0, err
	}
	objs, err := p.Objects()
	if err != nil {
		return nil, 0, err
	}
	out := []gatehouse.Object{}
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out, v, nil
}

// PutObject creates or replaces the object of kind with id from body, one
// JSON object of that kind's shape (a gatehouse.Role for roles, …). Unknown
// fields are ErrInvalid; the body's own id, when present, must equal id,
// and is filled in when absent. A new plan becomes the highest tier; a
// replaced one keeps its place. created reports whether the object is new.
func (s *Service) PutObject(ctx context.Context, actor string, kind gatehouse.Kind, id string, body []byte) (res Result, created bool, err error) {
	obj, err := decodeObject(kind, id, body)
	if err != nil {
		return Result{}, false, err
	}
	if kind == gatehouse.KindUser || kind == gatehouse.KindAgent {
		return s.putSubject(ctx, actor, obj)
	}
	res, err = s.updateSection(ctx, actor, string(kind)+".put", kind, s.putFn(ctx, obj, &created))
	return res, created, err
}

// putFn returns the change function of PutObject for obj, of a section
// other than users and agents, which sets *created to whether obj is new.
func (s *Service) putFn(ctx context.Context, obj gatehouse.Object, created *bool) func(p *gatehouse.Policy) error {
	kind := obj.Kind
	return func(p *gatehouse.Policy) error {
		objs, err := sectionObjects(p, kind)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(objs, func(o gatehouse.Object) bool { return o.Kind == kind && o.ID == obj.ID })
		*created = i < 0
		if *created {
			if kind == gatehouse.KindPlan {
				obj.Pos = len(objs) // after every plan: the highest tier
			}
			objs = append(objs, obj)
		} else {
			obj.Pos = objs[i].Pos
			objs[i] = obj
		}
		// A replaced tenant or user keeps the plan billing manages.
		old := planOf(p, kind, obj.ID)
		oldPlan := ""
		if old != nil {
			oldPlan = *old
		}
		if err := replaceSection(p, kind, objs); err != nil {
			return err
		}
		if old == nil {
			return nil
		}
		return s.keepBilledPlan(ctx, kind, obj.ID, oldPlan, planOf(p, kind, obj.ID))
	}
}

// putSubject is PutObject of a user or agent: a replacement costs what it
// changes (updateSubject), a new subject takes Update's path.
func (s *Service) putSubject(ctx context.Context, actor string, obj gatehouse.Object) (res Result, created bool, err error) {
	entry, err := gatehouse.PolicyFromObjects([]gatehouse.Object{obj})
	if err != nil {
		return Result{}, false, err
	}
	subject := gatehouse.AgentRef(obj.ID)
	if obj.Kind == gatehouse.KindUser {
		subject = gatehouse.User(obj.ID)
	}
	res, err = s.updateSubject(ctx, actor, string(obj.Kind)+".put", subject, func(p *gatehouse.Policy) error {
		if obj.Kind == gatehouse.KindAgent {
			a := entry.Agents[0]
			i := slices.IndexFunc(p.Agents, func(x gatehouse.Agent) bool { return x.ID == a.ID })
			created = i < 0
			if created {
				p.Agents = append(p.Agents, a)
			} else {
				p.Agents[i] = a
			}
			return nil
		}
		u := entry.Users[0]
		i := slices.IndexFunc(p.Users, func(x gatehouse.UserEntry) bool { return x.Email == u.Email })
		created = i < 0
		if created {
			p.Users = append(p.Users, u)
			return nil
		}
		// A replaced user keeps the plan billing manages.
		old := p.Users[i].Plan
		p.Users[i] = u
		return s.keepBilledPlan(ctx, gatehouse.KindUser, u.Email, old, &p.Users[i].Plan)
	})
	return res, created, err
}

// DeleteObject removes the object of kind with id; ErrNotFound if there is
// none. Removing an object others refer to is ErrInvalid naming them, and
// removing the last superuser is ErrLastSuperuser.
func (s *Service) DeleteObject(ctx context.Context, actor string, kind gatehouse.Kind, id string) (Result, error) {
	if kind == gatehouse.KindSettings {
		return Result{}, gatehouse.Invalidf("the settings cannot be deleted; put empty settings instead")
	}
	id = objectID(kind, id)
	if kind == gatehouse.KindUser || kind == gatehouse.KindAgent {
		return s.deleteSubject(ctx, actor, kind, id)
	}
	return s.updateSection(ctx, actor, string(kind)+".delete", kind, deleteFn(kind, id))
}

// deleteFn returns the change function of DeleteObject for the object of
// kind, a section other than users and agents, with id.
func deleteFn(kind gatehouse.Kind, id string) func(p *gatehouse.Policy) error {
	return func(p *gatehouse.Policy) error {
		objs, err := sectionObjects(p, kind)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(objs, func(o gatehouse.Object) bool { return o.ID == id })
		if i < 0 {
			return gatehouse.NotFoundf("%s %q", kind, id)
		}
		return replaceSection(p, kind, slices.Delete(objs, i, i+1))
	}
}

// deleteSubject is DeleteObject for a user or an agent, which nothing else
// in the policy refers to: a single-subject change (updateSubject).
func (s *Service) deleteSubject(ctx context.Context, actor string, kind gatehouse.Kind, id string) (Result, error) {
	subject := gatehouse.AgentRef(id)
	if kind == gatehouse.KindUser {
		subject = gatehouse.User(id)
	}
	return s.updateSubject(ctx, actor, string(kind)+".delete", subject, func(p *gatehouse.Policy) error {
		n := len(p.Users) + len(p.Agents)
		if kind == gatehouse.KindUser {
			p.Users = slices.DeleteFunc(p.Users, func(u gatehouse.UserEntry) bool { return u.Email == id })
		} else {
			p.Agents = slices.DeleteFunc(p.Agents, func(a gatehouse.Agent) bool { return a.ID == id })
		}
		if len(p.Users)+len(p.Agents) == n {
			return gatehouse.NotFoundf("%s %q", kind, id)
		}
		return nil
	})
}

// sectionObjects returns the objects of p's section of kind, as
// p.Objects gives them, without encoding the other sections.
func sectionObjects(p *gatehouse.Policy, kind gatehouse.Kind) ([]gatehouse.Object, error) {
	var section gatehouse.Policy
	copySection(&section, p, kind)
	objs, err := section.Objects()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(o gatehouse.Object) bool { return o.Kind != kind }), nil
}

// replaceSection makes p's section of kind the one objs, all of that kind,
// make, as a policy loaded from them has it.
func replaceSection(p *gatehouse.Policy, kind gatehouse.Kind, objs []gatehouse.Object) error {
	q, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		return err
	}
	copySection(p, q, kind)
	return nil
}

// copySection sets dst's section of kind to src's.
func copySection(dst, src *gatehouse.Policy, kind gatehouse.Kind) {
	switch kind {
	case gatehouse.KindSettings:
		dst.Settings = src.Settings
	case gatehouse.KindPermission:
		dst.Permissions = src.Permissions
	case gatehouse.KindBundle:
		dst.Bundles = src.Bundles
	case gatehouse.KindCategory:
		dst.Categories = src.Categories
	case gatehouse.KindRole:
		dst.Roles = src.Roles
	case gatehouse.KindPlan:
		dst.Plans = src.Plans
	case gatehouse.KindTenant:
		dst.Tenants = src.Tenants
	case gatehouse.KindUser:
		dst.Users = src.Users
	case gatehouse.KindAgent:
		dst.Agents = src.Agents
	case gatehouse.KindTool:
		dst.Tools = src.Tools
	case gatehouse.KindAction:
		dst.Actions = src.Actions
	case gatehouse.KindResource:
		dst.Resources = src.Resources
	}
}

// objectID normalizes a path id: users are keyed by normalized email.
func objectID(kind gatehouse.Kind, id string) string {
	if kind == gatehouse.KindUser {
		return gatehouse.NormalizeEmail(id)
	}
	return id
}

// idField is the member of each kind's JSON that holds its id.
var idField = map[gatehouse.Kind]string{
	gatehouse.KindPermission: "name", gatehouse.KindBundle: "name", gatehouse.KindCategory: "name",
	gatehouse.KindRole: "name", gatehouse.KindPlan: "name", gatehouse.KindTool: "name", gatehouse.KindAction: "name",
	gatehouse.KindTenant: "id", gatehouse.KindAgent: "id", gatehouse.KindUser: "email",
}

// decodeObject decodes body as one object of kind keyed id, strictly, and
// returns it in canonical form.
func decodeObject(kind gatehouse.Kind, id string, body []byte) (gatehouse.Object, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return gatehouse.Object{}, gatehouse.Invalidf("%s: the body must be one JSON object", kind)
	}
	if err := fillID(kind, id, m); err != nil {
		return gatehouse.Object{}, err
	}
	filled, err := json.Marshal(m)
	if err != nil {
		return gatehouse.Object{}, err
	}
	if kind.Rank() == len(gatehouse.Kinds) {
		return gatehouse.Object{}, gatehouse.Invalidf("unknown kind %q", kind)
	}
	// The object as the one entry of its section of a policy document, so
	// the policy's own JSON shape decides what is a known field.
	var doc []byte
	if kind == gatehouse.KindSettings {
		doc, err = json.Marshal(map[string]json.RawMessage{kind.Section(): filled})
	} else {
		doc, err = json.Marshal(map[string][]json.RawMessage{kind.Section(): {filled}})
	}
	if err != nil {
		return gatehouse.Object{}, err
	}
	var p gatehouse.Policy
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return gatehouse.Object{}, gatehouse.Invalidf("%s %q: %v", kind, id, err)
	}
	objs, err := p.Objects()
	if err != nil {
		return gatehouse.Object{}, err
	}
	if kind == gatehouse.KindSettings && len(objs) == 0 {
		// Empty settings are stored as no settings object at all.
		return gatehouse.Object{Kind: kind, ID: "settings", Body: json.RawMessage(`{}`)}, nil
	}
	return objs[0], nil
}

// fillID sets the id member of m from the path id, or checks that the one
// m has names the same object. A resource's id is "type/id".
func fillID(kind gatehouse.Kind, id string, m map[string]json.RawMessage) error {
	set := func(field, want string) error {
		raw, ok := m[field]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			m[field], _ = json.Marshal(want)
			return nil
		}
		var got string
		if json.Unmarshal(raw, &got) != nil {
			return gatehouse.Invalidf("%s: %s must be a string", kind, field)
		}
		if objectID(kind, got) != objectID(kind, want) {
			return gatehouse.Invalidf("%s: the body's %s %q differs from %q in the path", kind, field, got, want)
		}
		return nil
	}
	switch kind {
	case gatehouse.KindSettings:
		return nil
	case gatehouse.KindResource:
		typ, rid, ok := strings.Cut(id, "/")
		if !ok || typ == "" || rid == "" {
			return gatehouse.Invalidf("resource %q: want TYPE/ID", id)
		}
		if err := set("type", typ); err != nil {
			return err
		}
		return set("id", rid)
	}
	return set(idField[kind], id)
}
