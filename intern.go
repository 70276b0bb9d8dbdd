package gatehouse

// interner keeps one copy of each string it is given, so that the ids a
// large policy repeats in every subject — permission names, role names,
// tenant ids, plans, conditions — are held once instead of once per
// mention: at a million users with ten grants each the copies were most
// of the policy's memory. Emails, names and aliases, which are unique,
// are left alone.
type interner map[string]string

func (in interner) str(s *string) {
	if *s == "" {
		return
	}
	if v, ok := in[*s]; ok {
		*s = v
		return
	}
	in[*s] = *s
}

func (in interner) strs(ss []string) {
	for i := range ss {
		in.str(&ss[i])
	}
}

func (in interner) bindings(roles []Assignment, grants []Grant) {
	for i := range roles {
		in.str(&roles[i].Role)
		in.str(&roles[i].Tenant)
		in.str(&roles[i].Condition)
	}
	for i := range grants {
		in.str(&grants[i].Permission)
		in.str(&grants[i].Tenant)
		in.str(&grants[i].Condition)
	}
}

// object interns the ids v, a pointer to one policy object, repeats.
func (in interner) object(v any) {
	switch x := v.(type) {
	case *Settings:
		in.strs(x.DefaultTenants)
		in.str(&x.AccessPermission)
		in.str(&x.AdminPermission)
	case *Permission:
		in.str(&x.Name)
		in.str(&x.Module)
		in.str(&x.Feature)
	case *Bundle:
		in.str(&x.Name)
		in.strs(x.Permissions)
	case *Category:
		in.strs(x.Bundles)
	case *Role:
		in.str(&x.Name)
		in.strs(x.Bundles)
		in.strs(x.Permissions)
	case *Plan:
		in.str(&x.Name)
		in.strs(x.Features)
	case *Tenant:
		in.str(&x.ID)
		in.str(&x.Parent)
		in.str(&x.Plan)
	case *UserEntry:
		in.strs(x.Tenants)
		in.bindings(x.Roles, x.Grants)
		in.str(&x.Plan)
	case *Agent:
		in.strs(x.Tenants)
		in.bindings(x.Roles, x.Grants)
	case *Tool:
		in.str(&x.Permission)
		in.str(&x.Action)
	case *ResourceEntry:
		in.str(&x.Type)
		in.str(&x.Tenant)
	}
}
