package postgres_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/postgres"
)

// Two Gatehouse instances on one database, each with its own pool, race
// 1,000 reservations for a window's limit — one at a time against
// max_count 50, and in batches of 10 against a max_total_amount that 14 of
// them fill: exactly 50 and 14 win, and the audit chain they share holds
// exactly their events.
func TestReservationsAcrossInstances(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		batch     int
		limit     func(r *gatehouse.Reservation)
		wantSlots int64
	}{
		{"max_count", 1, func(r *gatehouse.Reservation) { r.MaxCount = 50 }, 50},
		{"max_total_amount", 10, func(r *gatehouse.Reservation) {
			r.Record.Amount, r.Record.Currency, r.MaxTotalAmount = 700, "EUR", 10000
		}, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := newSchema(t)
			instances := []*postgres.DB{openClosed(t, dsn), openClosed(t, dsn)}
			var (
				wg    sync.WaitGroup
				won   atomic.Int64
				start = make(chan struct{})
			)
			for g := range 1000 / tt.batch {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs := make([]gatehouse.Reservation, tt.batch)
					for i := range rs {
						rs[i] = gatehouse.Reservation{Window: time.Hour, Record: gatehouse.ActionRecord{
							ID: fmt.Sprintf("a%03d-%02d", g, i), Tenant: "acme", Action: "process_refund", Tool: "refund",
							Subject: "agent:bot", Reason: gatehouse.ReasonGranted, Status: gatehouse.ActionConfirmed,
							CreatedAt: at, UpdatedAt: at, UpdatedBy: "agent:bot",
						}}
						tt.limit(&rs[i])
					}
					<-start
					res, err := instances[g%2].ReserveActions(t.Context(), rs)
					if err != nil || len(res) != len(rs) {
						t.Errorf("ReserveActions(%d) = %d results, %v", g, len(res), err)
						return
					}
					for _, r := range res {
						if r.Exceeded == "" {
							won.Add(1)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			if won.Load() != tt.wantSlots {
				t.Errorf("%d of 1000 reservations across two instances won, want %d", won.Load(), tt.wantSlots)
			}
			rep, err := audit.Verify(t.Context(), instances[0])
			if err != nil || rep.Events != tt.wantSlots {
				t.Errorf("audit.Verify() = %d events, %v; want %d", rep.Events, err, tt.wantSlots)
			}
		})
	}
}
