package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
)

// ActionCheckpoint is the action of the audit event that records a signed
// checkpoint; its Detail is the Checkpoint as JSON.
const ActionCheckpoint = "audit.checkpoint"

// Checkpoint reasons, recorded in Checkpoint.Reason.
const (
	CheckpointManual   = "manual"
	CheckpointInterval = "interval"
	CheckpointShutdown = "shutdown"
	// CheckpointRetention marks the new beginning of a chain retention
	// pruned.
	CheckpointRetention = "retention"
)

// Checkpoint is a signed statement that the audit chain held event Seq with
// Hash at Time. The signing key lives outside the store, so whoever can
// rewrite the store cannot sign: a chain that no longer holds a checkpoint's
// event, or holds another hash there, was truncated or rewritten.
type Checkpoint struct {
	Seq    int64     `json:"seq"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	// Base is where the chain began after retention pruned it, when it
	// was; a prune no checkpoint attests is not trusted.
	Base      *gatehouse.AuditBase `json:"base,omitempty"`
	KeyID     string               `json:"key_id"`
	Signature string               `json:"signature"`
}

// signed is what the signature covers: every field but the signature, one
// per line after a version tag, the time in UTC RFC 3339 with microseconds.
func (c Checkpoint) signed() []byte {
	var b bytes.Buffer
	b.WriteString("gatehouse audit checkpoint v1\n")
	b.WriteString(strconv.FormatInt(c.Seq, 10) + "\n")
	b.WriteString(c.Hash + "\n")
	b.WriteString(canonicalTime(c.Time).Format(time.RFC3339Nano) + "\n")
	b.WriteString(c.Reason + "\n")
	var base gatehouse.AuditBase
	if c.Base != nil {
		base = *c.Base
	}
	b.WriteString(strconv.FormatInt(base.Seq, 10) + " " + base.Hash + " " + base.Retained + "\n")
	b.WriteString(c.KeyID + "\n")
	return b.Bytes()
}

// String names the checkpoint for messages.
func (c Checkpoint) String() string {
	return fmt.Sprintf("checkpoint at seq %d (%s, %s)", c.Seq, canonicalTime(c.Time).Format(time.RFC3339), c.Reason)
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign returns the checkpoint of head at t, signed with key.
func Sign(key ed25519.PrivateKey, head gatehouse.AuditHead, t time.Time, reason string) Checkpoint {
	return SignFrom(key, gatehouse.AuditBase{}, head, t, reason)
}

// SignFrom returns the checkpoint of head, of a chain pruned to base, at t,
// signed with key.
func SignFrom(key ed25519.PrivateKey, base gatehouse.AuditBase, head gatehouse.AuditHead, t time.Time, reason string) Checkpoint {
	c := Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: canonicalTime(t), Reason: reason,
		KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	if base.Seq > 0 {
		c.Base = &base
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.signed()))
	return c
}

// VerifySignature reports, wrapping gatehouse.ErrInvalid, a checkpoint not
// signed by pub.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.signed(), sig) {
		return gatehouse.Invalidf("%s: the signature does not verify with key %s", c, KeyID(pub))
	}
	return nil
}

// Event returns the audit event that records c.
func (c Checkpoint) Event() (gatehouse.AuditEvent, error) {
	detail, err := json.Marshal(c)
	if err != nil {
		return gatehouse.AuditEvent{}, err
	}
	return gatehouse.AuditEvent{Time: c.Time, Actor: "system", Action: ActionCheckpoint, Detail: detail}, nil
}

// CheckpointOf returns the checkpoint an ActionCheckpoint event records.
func CheckpointOf(e gatehouse.AuditEvent) (Checkpoint, error) {
	var c Checkpoint
	if err := json.Unmarshal(e.Detail, &c); err != nil {
		return Checkpoint{}, gatehouse.Invalidf("audit event %d: not a checkpoint: %v", e.Seq, err)
	}
	return c, nil
}

// ReadCheckpoints reads checkpoints as JSON lines, as the export writes them.
func ReadCheckpoints(r io.Reader) ([]Checkpoint, error) {
	var out []Checkpoint
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var c Checkpoint
		if err := dec.Decode(&c); err != nil {
			return nil, gatehouse.Invalidf("checkpoints line %d: %v", line, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// GenerateKey returns a new Ed25519 key pair as PEM: the private key as
// PKCS #8, the public key as PKIX.
func GenerateKey(rand io.Reader) (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("generate audit key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("generate audit key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("generate audit key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// ParsePrivateKey parses a PEM PKCS #8 Ed25519 private key, as GenerateKey
// writes it; ErrInvalid otherwise.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, gatehouse.Invalidf("audit key: not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, gatehouse.Invalidf("audit key: %v", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, gatehouse.Invalidf("audit key: a %T, want Ed25519", k)
	}
	return priv, nil
}

// ParsePublicKey parses a PEM PKIX Ed25519 public key, as GenerateKey
// writes it; ErrInvalid otherwise.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, gatehouse.Invalidf("audit public key: not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, gatehouse.Invalidf("audit public key: %v", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, gatehouse.Invalidf("audit public key: a %T, want Ed25519", k)
	}
	return pub, nil
}

// Checkpoint failure reasons; stable, like reason codes.
const (
	// ReasonBadSignature: a checkpoint does not verify with the public key.
	ReasonBadSignature = "bad_signature"
	// ReasonTruncated: the chain ends before a checkpoint's event.
	ReasonTruncated = "truncated"
	// ReasonRewritten: the chain holds another hash at a checkpoint's seq.
	ReasonRewritten = "rewritten"
	// ReasonUnattestedPrune: the chain was pruned, and no checkpoint signs
	// where it now begins.
	ReasonUnattestedPrune = "unattested_prune"
)

// CheckpointError reports the first checkpoint the chain contradicts, and
// the last one before it that it still holds. It wraps gatehouse.ErrCorrupt.
type CheckpointError struct {
	Reason     string
	Checkpoint Checkpoint
	// LastGood is the latest checkpoint before Checkpoint that the chain
	// holds; nil if there is none.
	LastGood *Checkpoint
	Detail   string
}

// Error names the checkpoint, the reason and the last good checkpoint.
func (e *CheckpointError) Error() string {
	good := "no earlier checkpoint holds"
	if e.LastGood != nil {
		good = "last good " + e.LastGood.String()
	}
	return fmt.Sprintf("audit chain contradicts %s: %s: %s; %s", e.Checkpoint, e.Reason, e.Detail, good)
}

// Unwrap returns gatehouse.ErrCorrupt.
func (e *CheckpointError) Unwrap() error { return gatehouse.ErrCorrupt }

// checkCheckpoints compares cps, in Seq order, with the hashes the chain
// holds (held, by seq) up to end, the last seq that verified, for a chain
// pruned to base. A checkpoint whose event retention pruned holds if a
// checkpoint signs that base.
func checkCheckpoints(cps []Checkpoint, pub ed25519.PublicKey, held map[int64]string, end int64, base gatehouse.AuditBase) (*Checkpoint, error) {
	var good *Checkpoint
	attested := base.Seq == 0
	for _, c := range cps {
		if c.Base != nil && *c.Base == base && c.VerifySignature(pub) == nil {
			attested = true
		}
	}
	for i := range cps {
		c := cps[i]
		if err := c.VerifySignature(pub); err != nil {
			return good, &CheckpointError{Reason: ReasonBadSignature, Checkpoint: c, LastGood: good, Detail: err.Error()}
		}
		h, ok := held[c.Seq]
		switch {
		case c.Seq > end:
			return good, &CheckpointError{Reason: ReasonTruncated, Checkpoint: c, LastGood: good,
				Detail: fmt.Sprintf("the chain verifies only up to event %d", end)}
		case !ok && c.Seq <= base.Seq && !attested:
			return good, &CheckpointError{Reason: ReasonUnattestedPrune, Checkpoint: c, LastGood: good,
				Detail: fmt.Sprintf("event %d was pruned, and no checkpoint signs the base at %d", c.Seq, base.Seq)}
		case !ok && c.Seq == base.Seq && c.Hash != base.Hash:
			return good, &CheckpointError{Reason: ReasonRewritten, Checkpoint: c, LastGood: good,
				Detail: fmt.Sprintf("the pruned base %d has hash %s, signed %s", c.Seq, base.Hash, c.Hash)}
		case !ok && c.Seq <= base.Seq:
			// Pruned, and the signed base vouches for what came before it.
		case !ok || h != c.Hash:
			return good, &CheckpointError{Reason: ReasonRewritten, Checkpoint: c, LastGood: good,
				Detail: fmt.Sprintf("event %d has hash %s, signed %s", c.Seq, h, c.Hash)}
		}
		good = &cps[i]
	}
	if !attested {
		c := Checkpoint{Seq: base.Seq, Hash: base.Hash, Reason: "prune"}
		return good, &CheckpointError{Reason: ReasonUnattestedPrune, Checkpoint: c, LastGood: good,
			Detail: fmt.Sprintf("the chain was pruned up to event %d, and no checkpoint signs that base", base.Seq)}
	}
	return good, nil
}

// errNoKey is returned for checkpoints without a key to check them.
var errNoKey = gatehouse.Invalidf("audit verify: checkpoints need a public key")
