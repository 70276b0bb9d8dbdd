package service

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// ImportUsers' own path (a view of the records' users, a merge into the
// kept policy, a derived snapshot) gives what the whole-policy path gives
// on a twin store over random imports — users created and changed, unknown
// roles and tenants, a user listed twice, malformed emails, an email that
// is another user's alias, dry runs: the same results and errors, the same
// stored policy, a kept policy equal to the stored one and a snapshot that
// decides as a fresh compile.
func TestImportPathEqualsWholePolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	fast, whole := openSQLite(t, filepath.Join(dir, "fast.db")), openSQLite(t, filepath.Join(dir, "whole.db"))
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Agents, cfg.Tenants, cfg.Roles, cfg.Bundles, cfg.Permissions = 60, 2, 20, 8, 10, 30
	for _, s := range []*Service{fast, whole} {
		if _, err := s.Update(ctx, "test", "policy.apply", func(p *gatehouse.Policy) error {
			*p = *enginetest.Generate(cfg)
			p.Users[7].Aliases = []string{"Alias.Seven@Example.com"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var own, committed, refused int
	for step := range 40 {
		stored, _, err := fast.load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(step), 5))
		var records []UserRecord
		for range 1 + r.IntN(12) {
			rec := UserRecord{Email: stored.Users[r.IntN(len(stored.Users))].Email}
			switch r.IntN(8) {
			case 0, 1:
				rec.Email = fmt.Sprintf("New.%03d@Example.com", r.IntN(200))
			case 2:
				if r.IntN(6) == 0 {
					rec.Email = []string{"not an email", "alias.seven@example.com"}[r.IntN(2)]
				}
			}
			for range r.IntN(3) {
				role := stored.Roles[r.IntN(len(stored.Roles))].Name
				if r.IntN(15) == 0 {
					role = "no such role"
				}
				rec.Roles = append(rec.Roles, role)
			}
			if r.IntN(2) == 0 {
				rec.Tenants = []string{stored.Tenants[r.IntN(len(stored.Tenants))].ID}
				if r.IntN(15) == 0 {
					rec.Tenants = []string{"no-such-tenant"}
				}
			}
			records = append(records, rec)
		}
		dry := r.IntN(6) == 0
		kept := fast.current.kept
		got, gotErr := fast.ImportUsers(ctx, "t", "users.csv", records, dry)
		whole.mu.Lock()
		whole.current = nil
		whole.mu.Unlock()
		want, wantErr := whole.ImportUsers(ctx, "t", "users.csv", records, dry)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("step %d: error %v, whole-policy path %v", step, gotErr, wantErr)
		}
		if gotErr != nil {
			refused++
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: result %+v, whole-policy path %+v", step, got, want)
		}
		if len(got.Changes) > 0 && !dry {
			committed++
			if fast.current.kept == kept {
				own++
			}
		}
		assertTwins(t, fmt.Sprintf("step %d", step), fast, whole, stored, uint64(step))
	}
	t.Logf("%d imports committed (%d by the own path), %d refused", committed, own, refused)
	if committed < 10 || refused < 5 || own < committed/2 {
		t.Errorf("%d imports committed (%d own), %d refused: the sequence should hold many of each", committed, own, refused)
	}
	if rep, err := fast.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}
