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
// 1,000 reservations for the 50 slots of a window: exactly 50 win, and the
// audit chain they share holds exactly their events.
func TestReservationsAcrossInstances(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	instances := []*postgres.DB{openClosed(t, dsn), openClosed(t, dsn)}
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var (
		wg    sync.WaitGroup
		won   atomic.Int64
		start = make(chan struct{})
	)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := gatehouse.Reservation{Window: time.Hour, MaxCount: 50, Record: gatehouse.ActionRecord{
				ID: fmt.Sprintf("a%04d", i), Tenant: "acme", Action: "process_refund", Tool: "refund",
				Subject: "agent:bot", Reason: gatehouse.ReasonGranted, Status: gatehouse.ActionConfirmed,
				CreatedAt: at, UpdatedAt: at, UpdatedBy: "agent:bot",
			}}
			res, err := instances[i%2].ReserveActions(t.Context(), []gatehouse.Reservation{r})
			if err != nil || len(res) != 1 {
				t.Errorf("ReserveActions(%d) = %v, %v", i, res, err)
				return
			}
			if res[0].Exceeded == "" {
				won.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if won.Load() != 50 {
		t.Errorf("%d of 1000 reservations across two instances won 50 slots", won.Load())
	}
	rep, err := audit.Verify(t.Context(), instances[0])
	if err != nil || rep.Events != 50 {
		t.Errorf("audit.Verify() = %d events, %v; want 50", rep.Events, err)
	}
}
