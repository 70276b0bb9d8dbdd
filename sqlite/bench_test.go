package sqlite_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sqlite"
)

// BenchmarkAppendAudit appends batches of 500 decisions, as the decision
// log does under load; ns/event is the cost of recording one decision.
func BenchmarkAppendAudit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "gatehouse.db")
	db, err := sqlite.Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	detail := json.RawMessage(`{"subject":"user:sara@acme.example","action":"analyze_loan","resource":"tenant/acme-berlin",` +
		`"tenant":"acme-berlin","decision":true,"reason":"granted","version":1,"request_id":"2FU2ZGSK3ZNF2BUOIKSOBS7GWV","latency_us":12}`)
	const batch = 500
	events := make([]gatehouse.AuditEvent, batch)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			events[i] = gatehouse.AuditEvent{Time: at, Actor: "user:sara@acme.example", Action: "decision",
				Target: fmt.Sprintf("user:sara@acme.example#%d", i), Detail: detail}
		}
		if err := db.AppendAudit(b.Context(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
	// What the decision log costs on disk: the file and its WAL, indexes
	// included, per event (the growth rate retention is sized by).
	var size int64
	for _, f := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	b.ReportMetric(float64(size)/float64(b.N*batch), "bytes/event")
}
