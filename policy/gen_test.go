package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/engine/enginetest"
)

// Document formats of generated benchmark documents.
const (
	formatJSONMinified = "json-minified"
	formatJSONIndented = "json-indented"
	formatYAML         = "yaml"
)

var benchFormats = []string{formatJSONMinified, formatJSONIndented, formatYAML}

// generatedDocs caches generated documents by "users/format": generating
// and marshaling 100,000 users takes seconds.
var generatedDocs sync.Map

// generatedDocument is the engine benchmarks' policy (enginetest.DefaultConfig)
// with users users, written in format as an export writes it; the same
// arguments always give the same bytes.
func generatedDocument(tb testing.TB, users int, format string) []byte {
	tb.Helper()
	key := fmt.Sprintf("%d/%s", users, format)
	if doc, ok := generatedDocs.Load(key); ok {
		return doc.([]byte)
	}
	cfg := enginetest.DefaultConfig()
	cfg.Users = users
	p := enginetest.Generate(cfg)
	var (
		doc []byte
		err error
	)
	switch format {
	case formatJSONIndented:
		doc, err = Marshal(p, "json")
	case formatJSONMinified:
		var indented []byte
		if indented, err = Marshal(p, "json"); err == nil {
			var buf bytes.Buffer
			err = json.Compact(&buf, indented)
			doc = buf.Bytes()
		}
	case formatYAML:
		doc, err = Marshal(p, "yaml")
	default:
		tb.Fatalf("generatedDocument: unknown format %q", format)
	}
	if err != nil {
		tb.Fatalf("generatedDocument(%d, %s): %v", users, format, err)
	}
	generatedDocs.Store(key, doc)
	return doc
}

// smallGenerated is a generated policy small enough for tests under -race.
func smallGenerated() enginetest.Config {
	cfg := enginetest.DefaultConfig()
	cfg.Users, cfg.Tenants, cfg.Permissions, cfg.Bundles, cfg.Roles = 200, 60, 100, 20, 10
	return cfg
}
