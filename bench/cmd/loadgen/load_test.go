package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%d latencies, %g) = %v, want %v", len(tc.sorted), tc.p, got, tc.want)
		}
	}
}

func TestRun(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	sc := scenario{name: "test", url: srv.URL, header: http.Header{"Authorization": {"Bearer t"}},
		bodies: [][]byte{[]byte(`{}`), []byte(`{"a":1}`)}, decisions: 1}
	r := run(context.Background(), srv.Client(), sc, 2, 20*time.Millisecond, 300*time.Millisecond)
	if r.requests == 0 || r.errors != 0 || !slices.IsSorted(r.latencies) || r.perSecond() <= 0 {
		t.Errorf("run = %d requests, %d errors (%s), sorted %v", r.requests, r.errors, r.firstError, slices.IsSorted(r.latencies))
	}
	status.Store(http.StatusInternalServerError)
	r = run(context.Background(), srv.Client(), sc, 2, 0, 300*time.Millisecond)
	if r.requests != 0 || r.errors == 0 || r.firstError == "" {
		t.Errorf("run against a failing server = %d requests, %d errors, first %q", r.requests, r.errors, r.firstError)
	}
}

func TestMatrixAndBodies(t *testing.T) {
	qs := matrix()
	if len(qs) != len(matrixUsers)*len(matrixTools)*len(matrixTenants) {
		t.Fatalf("matrix has %d questions", len(qs))
	}
	seen := map[question]bool{}
	for _, q := range qs {
		if seen[q] {
			t.Errorf("question %v twice", q)
		}
		seen[q] = true
	}
	gh := &gatehouse{}
	for i, b := range batchBodies(qs, 100, gh.batchBody) {
		var body struct {
			Evaluations []struct {
				Action struct{ Name string }
			}
		}
		if err := json.Unmarshal(b, &body); err != nil || len(body.Evaluations) != 100 || body.Evaluations[0].Action.Name != qs[i].tool {
			t.Fatalf("batch %d: %d evaluations, %v", i, len(body.Evaluations), err)
		}
	}
}

// TestOpenFGAModel checks the model's references: every relation a rewrite
// computes or follows exists on its type, every directly assignable
// relation declares its user types, and every tuple names a relation that
// can hold it.
func TestOpenFGAModel(t *testing.T) {
	model := openFGAModel()
	relations := map[string]map[string]any{}
	metadata := map[string]map[string]any{}
	for _, td := range model["type_definitions"].([]rewrite) {
		typ := td["type"].(string)
		relations[typ] = map[string]any{}
		if rels, ok := td["relations"].(rewrite); ok {
			relations[typ] = rels
		}
		metadata[typ] = map[string]any{}
		if md, ok := td["metadata"].(rewrite); ok {
			metadata[typ] = md["relations"].(rewrite)
		}
	}
	var walk func(typ, rel string, rw rewrite)
	walk = func(typ, rel string, rw rewrite) {
		for kind, v := range rw {
			switch kind {
			case "this":
				if metadata[typ][rel] == nil {
					t.Errorf("%s#%s is assignable without user types", typ, rel)
				}
			case "computedUserset":
				if r := v.(rewrite)["relation"].(string); relations[typ][r] == nil {
					t.Errorf("%s#%s computes unknown %s", typ, rel, r)
				}
			case "tupleToUserset":
				ttu := v.(rewrite)
				tupleset := ttu["tupleset"].(rewrite)["relation"].(string)
				if relations[typ][tupleset] == nil {
					t.Errorf("%s#%s follows unknown %s", typ, rel, tupleset)
				}
				target := ttu["computedUserset"].(rewrite)["relation"].(string)
				found := false
				for _, rels := range relations {
					found = found || rels[target] != nil
				}
				if !found {
					t.Errorf("%s#%s follows %s to unknown %s", typ, rel, tupleset, target)
				}
			case "union", "intersection":
				for _, child := range v.(rewrite)["child"].([]rewrite) {
					walk(typ, rel, child)
				}
			default:
				t.Errorf("%s#%s: unknown rewrite %s", typ, rel, kind)
			}
		}
	}
	for typ, rels := range relations {
		for rel, rw := range rels {
			walk(typ, rel, rw.(rewrite))
		}
	}
	for _, tool := range matrixTools {
		if relations["tenant"]["can_"+tool] == nil {
			t.Errorf("no relation can_%s", tool)
		}
	}
	for _, tk := range openFGATuples() {
		typ, _, _ := strings.Cut(tk.Object, ":")
		if metadata[typ][tk.Relation] == nil {
			t.Errorf("tuple %v: %s#%s is not directly assignable", tk, typ, tk.Relation)
		}
	}
}

func TestServeBaseline(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- serveBaseline(ctx, addr) }()
	m := &Main{hc: &http.Client{}}
	if err := m.waitReady(ctx, "http://"+addr+"/"); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Decision bool `json:"decision"`
	}
	if err := postRaw(ctx, m.hc, "http://"+addr+"/access/v1/evaluation", []byte(`{}`), &d); err != nil || !d.Decision {
		t.Errorf("baseline answer: %v, %v", d, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveBaseline after cancel: %v", err)
	}
}
