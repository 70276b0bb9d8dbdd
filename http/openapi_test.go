package http_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/golden"
)

// The OpenAPI document is built from the route table, so it cannot miss a
// route; the golden file makes every change to the API visible in review.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	r := f.do(call{method: http.MethodGet, path: "/api/v1/openapi.json"})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %q", r.status, r.header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Error   string                               `json:"error"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.Error != "" || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi.json is not an OpenAPI 3.1 document (%v): %.300s", err, r.body)
	}
	golden.Check(t, filepath.Join("testdata", "openapi.json"), string(r.body))

	// Every documented operation is served: a request with the wrong
	// method gets 405, so the path exists, and the method is in Allow.
	for path, ops := range doc.Paths {
		for method := range ops {
			concrete := strings.NewReplacer("{tenant}", "acme", "{id}", "x", "{type}", "record", "{name}", "n",
				"{action_type}", "process_refund", "{limit_type}", "max_amount").Replace(path)
			r := f.do(call{method: http.MethodPatch, path: concrete})
			if r.status != http.StatusMethodNotAllowed || !strings.Contains(r.header.Get("Allow"), strings.ToUpper(method)) {
				t.Errorf("%s %s is documented but PATCH %s answers %d, Allow %q", strings.ToUpper(method), path, concrete, r.status, r.header.Get("Allow"))
			}
		}
	}
}
