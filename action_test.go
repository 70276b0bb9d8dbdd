package gatehouse_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
)

func TestDecimalJSON(t *testing.T) {
	tests := []struct {
		in   string
		want gatehouse.Decimal
		ok   bool
	}{
		{`"49.90"`, "49.90", true},
		{`49.90`, "49.90", true},
		{`12345678901234567890.123`, "12345678901234567890.123", true},
		{`"1e3"`, "1e3", true},
		{`"ten"`, "", false},
		{`true`, "", false},
		{`{}`, "", false},
	}
	for _, tt := range tests {
		var d gatehouse.Decimal
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err == nil) != tt.ok || d != tt.want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q, ok %v", tt.in, d, err, tt.want, tt.ok)
		}
	}
	if b, _ := json.Marshal(gatehouse.Decimal("49.90")); string(b) != `"49.90"` {
		t.Errorf("Marshal(49.90) = %s, want a string", b)
	}
}

func TestApplyTransition(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pending := gatehouse.ActionRecord{ID: "a", Status: gatehouse.ActionPending, ExpiresAt: at.Add(time.Minute)}
	got, err := gatehouse.ApplyTransition(pending, gatehouse.Transition{To: gatehouse.ActionConfirmed, Actor: "user:ana@x.io", Time: at})
	if err != nil || got.Status != gatehouse.ActionConfirmed || !got.ConfirmedAt.Equal(at) || got.ConfirmedBy != "user:ana@x.io" {
		t.Errorf("confirm = %+v, %v", got, err)
	}
	got, err = gatehouse.ApplyTransition(pending, gatehouse.Transition{To: gatehouse.ActionConfirmed, Time: at.Add(time.Minute)})
	if !errors.Is(err, gatehouse.ErrActionExpired) || got.Status != gatehouse.ActionExpired || got.UpdatedBy != "system" || !got.UpdatedAt.Equal(pending.ExpiresAt) {
		t.Errorf("confirm at the expiry = %+v, %v; want the expiry recorded", got, err)
	}
	if _, err := gatehouse.ApplyTransition(pending, gatehouse.Transition{To: gatehouse.ActionExpired, Time: at}); !errors.Is(err, gatehouse.ErrIllegalTransition) {
		t.Errorf("expire before the expiry = %v, want ErrIllegalTransition", err)
	}
	if gatehouse.ErrorCode(gatehouse.ErrIllegalTransition) != gatehouse.CodeIllegalTransition || gatehouse.ErrorCode(gatehouse.ErrNotApprover) != gatehouse.CodeNotApprover ||
		gatehouse.ErrorCode(gatehouse.ErrActionExpired) != gatehouse.CodeActionExpired {
		t.Errorf("lifecycle errors do not map to their codes")
	}
	for _, s := range gatehouse.ActionStatuses {
		if s.Holds() == (s == gatehouse.ActionFailed || s == gatehouse.ActionCancelled || s == gatehouse.ActionExpired) {
			t.Errorf("%s.Holds() = %v", s, s.Holds())
		}
	}
}

func TestReservationExceeded(t *testing.T) {
	r := gatehouse.Reservation{Record: gatehouse.ActionRecord{Amount: 500}, Window: time.Hour, MaxCount: 3, MaxTotalAmount: 1000}
	tests := []struct {
		count, total int64
		want         string
	}{
		{2, 500, ""},
		{3, 0, gatehouse.LimitMaxCount},
		{0, 501, gatehouse.LimitMaxTotalAmount},
		{0, 500, ""},
	}
	for _, tt := range tests {
		if got := r.Exceeded(tt.count, tt.total); got != tt.want {
			t.Errorf("Exceeded(%d, %d) = %q, want %q", tt.count, tt.total, got, tt.want)
		}
	}
	if got := (gatehouse.Reservation{MaxCount: 1}).Exceeded(5, 0); got != "" {
		t.Errorf("Exceeded without a window = %q", got)
	}
}
