package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// SignatureHeader is the HTTP header that carries a webhook's signature.
const SignatureHeader = "Stripe-Signature"

// DefaultTolerance is how far a signature's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// Why a signature is refused. Each wraps gatehouse.ErrInvalid.
var (
	ErrNotSigned         = fmt.Errorf("no %s header: %w", SignatureHeader, gatehouse.ErrInvalid)
	ErrBadHeader         = fmt.Errorf("malformed %s header: %w", SignatureHeader, gatehouse.ErrInvalid)
	ErrOutsideTolerance  = fmt.Errorf("signature timestamp outside the tolerance window: %w", gatehouse.ErrInvalid)
	ErrSignatureMismatch = fmt.Errorf("no signature matches a configured secret: %w", gatehouse.ErrInvalid)
)

// maxSignatures bounds the v1 values one header may carry; providers send
// one, or two while a secret is being rotated.
const maxSignatures = 8

// Verify checks header, a Stripe-Signature value "t=UNIX,v1=HEX[,v1=HEX…]",
// against payload: some v1 value must be the HMAC-SHA256, under one of
// secrets, of "t.payload", and t must lie within tolerance of now, either
// way. Several v1 values let the provider rotate its secret; several
// secrets let the operator rotate ours. Keys other than t and v1 (v0) are
// ignored, as Stripe's libraries ignore them.
func Verify(payload []byte, header string, secrets []string, tolerance time.Duration, now time.Time) error {
	if strings.TrimSpace(header) == "" {
		return ErrNotSigned
	}
	var (
		ts   int64
		seen bool
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("part %q: %w", part, ErrBadHeader)
		}
		switch key {
		case "t":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || seen {
				return fmt.Errorf("timestamp %q: %w", value, ErrBadHeader)
			}
			ts, seen = n, true
		case "v1":
			sig, err := hex.DecodeString(value)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("signature %q: %w", value, ErrBadHeader)
			}
			if len(sigs) == maxSignatures {
				return fmt.Errorf("more than %d signatures: %w", maxSignatures, ErrBadHeader)
			}
			sigs = append(sigs, sig)
		}
	}
	if !seen || len(sigs) == 0 {
		return fmt.Errorf("want t and at least one v1: %w", ErrBadHeader)
	}
	// Compared in seconds, so that no timestamp can overflow a Duration.
	if d := now.Unix() - ts; d > int64(tolerance/time.Second) || -d > int64(tolerance/time.Second) {
		return fmt.Errorf("timestamp %d is %ds from now, tolerance %v: %w", ts, d, tolerance, ErrOutsideTolerance)
	}
	for _, secret := range secrets {
		want := sign(ts, payload, secret)
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				return nil
			}
		}
	}
	return ErrSignatureMismatch
}

// Sign returns the Stripe-Signature header value for payload signed with
// secret at time t, as the provider computes it: t=UNIX,v1=HEX.
func Sign(payload []byte, secret string, t time.Time) string {
	return "t=" + strconv.FormatInt(t.Unix(), 10) + ",v1=" + hex.EncodeToString(sign(t.Unix(), payload, secret))
}

func sign(ts int64, payload []byte, secret string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return mac.Sum(nil)
}
