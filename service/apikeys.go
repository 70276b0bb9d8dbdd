package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// APIKeyPrefix starts every API key token: "ghk_<id>_<secret>". The prefix
// tells a key from a JWT and makes leaked keys easy to scan for.
const APIKeyPrefix = "ghk_"

// ErrBadAPIKey is returned for a token that is not a valid, active key; it
// does not say why, so a caller cannot probe which keys exist.
var ErrBadAPIKey = errors.New("invalid API key")

// IssueAPIKey creates a key acting as subject (a user or agent of the
// policy) with scopes, valid for ttl (0: until revoked), and returns its
// token — the only time the secret exists outside the caller's hands.
func (s *Service) IssueAPIKey(ctx context.Context, actor, name string, subject gatehouse.SubjectRef, scopes []string, ttl time.Duration) (string, gatehouse.APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", gatehouse.APIKey{}, gatehouse.Invalidf("an API key needs a name")
	}
	if ttl < 0 {
		return "", gatehouse.APIKey{}, gatehouse.Invalidf("API key lifetime %s is negative", ttl)
	}
	if _, err := s.Snapshot().Effective(subject, ""); err != nil {
		return "", gatehouse.APIKey{}, fmt.Errorf("API key subject: %w", err)
	}
	scopes = slices.Compact(slices.Sorted(slices.Values(scopes)))
	now := s.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	id, secret := strings.ToLower(rand.Text()[:16]), rand.Text()+rand.Text()
	k := gatehouse.APIKey{ID: id, Name: name, Subject: subject, Scopes: scopes, Hash: hashSecret(secret), CreatedAt: now, CreatedBy: actor}
	if ttl > 0 {
		k.ExpiresAt = now.Add(ttl)
	}
	if err := k.Validate(); err != nil {
		return "", gatehouse.APIKey{}, err
	}
	after, err := json.Marshal(k)
	if err != nil {
		return "", gatehouse.APIKey{}, err
	}
	event := gatehouse.AuditEvent{Time: now, Actor: actor, Action: "api_key.create", Target: "api_key/" + id, After: after}
	if err := s.store.CreateAPIKey(ctx, k, event); err != nil {
		return "", gatehouse.APIKey{}, err
	}
	return APIKeyPrefix + id + "_" + secret, k, nil
}

// VerifyAPIKey returns the active key token names, or ErrBadAPIKey.
func (s *Service) VerifyAPIKey(ctx context.Context, token string) (gatehouse.APIKey, error) {
	rest, ok := strings.CutPrefix(token, APIKeyPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" || secret == "" {
		return gatehouse.APIKey{}, ErrBadAPIKey
	}
	k, err := s.store.APIKey(ctx, id)
	if errors.Is(err, gatehouse.ErrNotFound) {
		return gatehouse.APIKey{}, ErrBadAPIKey
	}
	if err != nil {
		return gatehouse.APIKey{}, err
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(k.Hash)) != 1 || !k.ActiveAt(s.cfg.Clock.Now()) {
		return gatehouse.APIKey{}, ErrBadAPIKey
	}
	return k, nil
}

// APIKeys returns every key, without secrets.
func (s *Service) APIKeys(ctx context.Context) ([]gatehouse.APIKey, error) {
	keys, err := s.store.ListAPIKeys(ctx)
	if keys == nil && err == nil {
		keys = []gatehouse.APIKey{}
	}
	return keys, err
}

// RevokeAPIKey revokes the key with id; revoking twice changes nothing.
func (s *Service) RevokeAPIKey(ctx context.Context, actor, id string) error {
	now := s.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	event := gatehouse.AuditEvent{Time: now, Actor: actor, Action: "api_key.revoke", Target: "api_key/" + id}
	return s.store.RevokeAPIKey(ctx, id, now, event)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
