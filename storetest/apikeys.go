package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

var apiKeyTests = []test{
	{"CreateGetList", testAPIKeyCreateGetList},
	{"Refusals", testAPIKeyRefusals},
	{"Revoke", testAPIKeyRevoke},
}

var keyTime = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func apiKey(id string) gatehouse.APIKey {
	return gatehouse.APIKey{
		ID: id, Name: "key " + id, Subject: gatehouse.AgentRef("support-bot"),
		Scopes: []string{gatehouse.ScopeAuthZEN, gatehouse.ScopeCheck}, Hash: "ab12" + id,
		CreatedAt: keyTime, CreatedBy: "user:admin@example.com", ExpiresAt: keyTime.Add(24 * time.Hour),
	}
}

func keyEvent(action, id string) gatehouse.AuditEvent {
	return gatehouse.AuditEvent{Time: keyTime, Actor: "user:admin@example.com", Action: action, Target: "api_key/" + id}
}

func testAPIKeyCreateGetList(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	for _, id := range []string{"k2", "k1"} {
		if err := s.CreateAPIKey(ctx, apiKey(id), keyEvent("api_key.create", id)); err != nil {
			t.Fatalf("CreateAPIKey(%s) = %v", id, err)
		}
	}
	got, err := s.APIKey(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(apiKey("k1"), got); diff != "" {
		t.Errorf("APIKey(k1) (-want +got):\n%s", diff)
	}
	keys, err := s.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != "k1" || keys[1].ID != "k2" {
		t.Errorf("ListAPIKeys() = %v, %v; want k1, k2", keys, err)
	}
	verify(t, s, 2)
}

func testAPIKeyRefusals(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	if err := s.CreateAPIKey(ctx, apiKey("k1"), keyEvent("api_key.create", "k1")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	noScope := apiKey("k2")
	noScope.Scopes = nil
	badScope := apiKey("k3")
	badScope.Scopes = []string{"everything"}
	for _, tc := range []struct {
		name string
		key  gatehouse.APIKey
		want error
	}{
		{"duplicate id", apiKey("k1"), gatehouse.ErrConflict},
		{"no scope", noScope, gatehouse.ErrInvalid},
		{"unknown scope", badScope, gatehouse.ErrInvalid},
		{"no hash", gatehouse.APIKey{ID: "k4", Name: "n", Subject: gatehouse.AgentRef("a"), Scopes: []string{gatehouse.ScopeCheck}, CreatedAt: keyTime}, gatehouse.ErrInvalid},
	} {
		if err := s.CreateAPIKey(ctx, tc.key, keyEvent("api_key.create", tc.key.ID)); !errors.Is(err, tc.want) {
			t.Errorf("CreateAPIKey(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := s.APIKey(ctx, "nope"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("APIKey(nope) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx, "nope", keyTime, keyEvent("api_key.revoke", "nope")); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("RevokeAPIKey(nope) = %v, want ErrNotFound", err)
	}
	unchanged(t, s, before, "refused API key writes")
}

// Revoking is recorded once, even when several revoke at the same time.
func testAPIKeyRevoke(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	if err := s.CreateAPIKey(ctx, apiKey("k1"), keyEvent("api_key.create", "k1")); err != nil {
		t.Fatal(err)
	}
	at := keyTime.Add(time.Hour)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := s.RevokeAPIKey(ctx, "k1", at, keyEvent("api_key.revoke", "k1")); err != nil {
				t.Errorf("RevokeAPIKey() = %v", err)
			}
		})
	}
	wg.Wait()
	k, err := s.APIKey(ctx, "k1")
	if err != nil || !k.RevokedAt.Equal(at) || k.ActiveAt(at) {
		t.Errorf("after revoking: %+v, %v", k, err)
	}
	verify(t, s, 2)
}
