package gatehouse_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// decidingPackages may import the engine and the guard: the engine and
// guard themselves, and service, the one door every surface asks.
var decidingPackages = map[string]bool{"engine": true, "guard": true, "service": true}

// ownedDependencies are imported by one package each (DESIGN.md: a package
// for a dependency is the only one that imports it).
// Example programs are clients, not part of Gatehouse: the chat's may
// speak WebSocket.
var ownedDependencies = map[string][]string{
	"github.com/modelcontextprotocol/go-sdk": {"mcpgw"},
	"github.com/jackc/pgx":                   {"postgres"},
	"modernc.org/sqlite":                     {"sqlite"},
	"github.com/coder/websocket":             {"http", "examples"},
	"github.com/openai/openai-go":            {"chat"},
}

// TestOneDoor fails if any package but service (and the engine and guard
// themselves) imports engine or guard: a surface that decides by itself
// would disagree with the others. Tests may, to test them.
func TestOneDoor(t *testing.T) {
	const module = "github.com/gatehouse/gatehouse/"
	forbidden := map[string]bool{module + "engine": true, module + "guard": true}
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// bench is a module of its own, testdata is not code.
			if path == "bench" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		top, _, _ := strings.Cut(filepath.ToSlash(path), "/")
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[p] && !decidingPackages[top] {
				t.Errorf("%s imports %s: surfaces decide through service, never by themselves", path, p)
			}
			for dep, owners := range ownedDependencies {
				if (p == dep || strings.HasPrefix(p, dep+"/")) && !slices.Contains(owners, top) {
					t.Errorf("%s imports %s: only %s/ may", path, p, strings.Join(owners, "/, "))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: the walk is broken", checked)
	}
}
