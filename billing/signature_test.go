package billing_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
)

const (
	secret    = "whsec_test_0123456789abcdef"
	oldSecret = "whsec_old_0123456789abcdef"
	payload   = `{"id":"evt_1","object":"event","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"customer":"cus_1"}}}`
)

// Our signatures are Stripe's, byte for byte, and each side accepts the
// other's.
func TestSignMatchesStripe(t *testing.T) {
	now := time.Now()
	for _, p := range []string{payload, "", "{}", "ünïcödé 退款 \x00 binary\xff"} {
		ours := billing.Sign([]byte(p), secret, now)
		theirs := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(p), Secret: secret, Timestamp: now})
		if ours != theirs.Header {
			t.Errorf("Sign(%q) = %q, stripe-go signs %q", p, ours, theirs.Header)
		}
		if err := webhook.ValidatePayloadWithTolerance([]byte(p), ours, secret, webhook.DefaultTolerance); err != nil {
			t.Errorf("stripe-go refuses our signature of %q: %v", p, err)
		}
		if err := billing.Verify([]byte(p), theirs.Header, []string{secret}, billing.DefaultTolerance, now); err != nil {
			t.Errorf("Verify(stripe-go's signature of %q) = %v", p, err)
		}
	}
	if billing.DefaultTolerance != webhook.DefaultTolerance {
		t.Errorf("DefaultTolerance = %v, stripe-go's is %v", billing.DefaultTolerance, webhook.DefaultTolerance)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(payload)
	sig := func(secret string, at time.Time) string { return billing.Sign(body, secret, at) }
	v1 := func(h string) string { return h[strings.Index(h, ",")+1:] }
	ts := "t=1800000000"
	tests := []struct {
		name    string
		body    []byte
		header  string
		secrets []string
		want    error
	}{
		{"valid", body, sig(secret, now), []string{secret}, nil},
		{"valid at the edge of the window", body, sig(secret, now.Add(-5*time.Minute)), []string{secret}, nil},
		{"valid, clock skew ahead", body, sig(secret, now.Add(5*time.Minute)), []string{secret}, nil},
		{"provider rotating: old and new signature", body, sig(oldSecret, now) + "," + v1(sig(secret, now)), []string{secret}, nil},
		{"we rotate: second configured secret", body, sig(oldSecret, now), []string{secret, oldSecret}, nil},
		{"v0 and unknown keys ignored", body, sig(secret, now) + ",v0=abc,x=y", []string{secret}, nil},
		{"spaces around parts", body, " " + strings.ReplaceAll(sig(secret, now), ",", " , "), []string{secret}, nil},
		{"wrong secret", body, sig("whsec_wrong_0123456789abcdef", now), []string{secret}, billing.ErrSignatureMismatch},
		{"removed secret", body, sig(oldSecret, now), []string{secret}, billing.ErrSignatureMismatch},
		{"tampered body", []byte(strings.Replace(payload, "cus_1", "cus_2", 1)), sig(secret, now), []string{secret}, billing.ErrSignatureMismatch},
		{"timestamp changed", body, "t=1800000001," + v1(sig(secret, now)), []string{secret}, billing.ErrSignatureMismatch},
		{"old timestamp", body, sig(secret, now.Add(-5*time.Minute-time.Second)), []string{secret}, billing.ErrOutsideTolerance},
		{"far future timestamp", body, sig(secret, now.Add(time.Hour)), []string{secret}, billing.ErrOutsideTolerance},
		{"huge timestamp", body, "t=9223372036854775807," + v1(sig(secret, now)), []string{secret}, billing.ErrOutsideTolerance},
		{"negative timestamp", body, "t=-9223372036854775808," + v1(sig(secret, now)), []string{secret}, billing.ErrOutsideTolerance},
		{"missing header", body, "", []string{secret}, billing.ErrNotSigned},
		{"blank header", body, "  ", []string{secret}, billing.ErrNotSigned},
		{"no timestamp", body, v1(sig(secret, now)), []string{secret}, billing.ErrBadHeader},
		{"no v1", body, ts + ",v0=" + strings.Repeat("ab", 32), []string{secret}, billing.ErrBadHeader},
		{"timestamp not a number", body, "t=soon," + v1(sig(secret, now)), []string{secret}, billing.ErrBadHeader},
		{"two timestamps", body, ts + "," + sig(secret, now), []string{secret}, billing.ErrBadHeader},
		{"v1 not hex", body, ts + ",v1=zz", []string{secret}, billing.ErrBadHeader},
		{"v1 too short", body, ts + ",v1=abcd", []string{secret}, billing.ErrBadHeader},
		{"part without =", body, sig(secret, now) + ",garbage", []string{secret}, billing.ErrBadHeader},
		{"too many signatures", body, ts + strings.Repeat(","+v1(sig(secret, now)), 9), []string{secret}, billing.ErrBadHeader},
		{"no secrets", body, sig(secret, now), nil, billing.ErrSignatureMismatch},
	}
	for _, tt := range tests {
		err := billing.Verify(tt.body, tt.header, tt.secrets, billing.DefaultTolerance, now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Verify(%q) = %v, want %v", tt.name, tt.header, err, tt.want)
		}
		if err != nil && !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: Verify = %v, want it to wrap ErrInvalid", tt.name, err)
		}
	}
}

// Whatever stripe-go refuses, Verify refuses too.
func TestVerifyRefusesWhatStripeRefuses(t *testing.T) {
	now := time.Now()
	body := []byte(payload)
	for _, h := range []string{
		billing.Sign(body, "whsec_wrong_0123456789abcdef", now),
		billing.Sign([]byte(payload+" "), secret, now),
		billing.Sign(body, secret, now.Add(-10*time.Minute)),
		"t=1",
		"",
	} {
		stripeErr := webhook.ValidatePayloadWithTolerance(body, h, secret, webhook.DefaultTolerance)
		ourErr := billing.Verify(body, h, []string{secret}, billing.DefaultTolerance, now)
		if stripeErr == nil || ourErr == nil {
			t.Errorf("header %q: stripe-go says %v, Verify says %v; want both to refuse", h, stripeErr, ourErr)
		}
	}
}
