package http_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

// lockedBuffer is a log sink the server and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// faultFixture serves the example policy from a SQLite file whose path the
// test knows, logging into log.
func faultFixture(t *testing.T) (f *fixture, path string, log *lockedBuffer) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "gatehouse.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := service.Open(ctx, store, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.ParseFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, "test", doc, false); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	log = &lockedBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	url := newListener(t, gatehttp.NewServer(svc, cfg).Handler())
	return &fixture{t: t, url: url, cfg: cfg, store: store, svc: svc, cat: cfg.Catalog}, path, log
}

// TestStoreFaults: through the real listener, a write to a database file
// that was deleted, or made read-only, under the running server is 503
// unavailable with a logged error, never an acknowledged write; /readyz
// says so; restoring the permissions heals both without a restart.
func TestStoreFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		fault, undo func(t *testing.T, path string)
	}{
		{
			name: "deleted",
			fault: func(t *testing.T, path string) {
				for _, p := range []string{path, path + "-wal", path + "-shm"} {
					if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Fatal(err)
					}
				}
			},
		},
		{
			name: "read-only",
			fault: func(t *testing.T, path string) {
				if err := os.Chmod(path, 0o444); err != nil {
					t.Fatal(err)
				}
			},
			undo: func(t *testing.T, path string) {
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, path, log := faultFixture(t)
			admin := f.token("user:admin@example.com")
			put := func(id string) response {
				return f.do(call{method: http.MethodPut, path: "/api/v1/roles/" + id, token: admin,
					body: `{"description": "x", "permissions": ["chat.view"]}`})
			}
			if r := put("Before"); r.status != http.StatusCreated {
				t.Fatalf("write before the fault = %d %s", r.status, r.body)
			}
			tt.fault(t, path)
			for _, id := range []string{"Lost1", "Lost2"} {
				r := put(id)
				if e := decodeInto[errorBody](t, r); r.status != http.StatusServiceUnavailable || e.Error.Code != gatehouse.CodeUnavailable {
					t.Errorf("write %s after the fault = %d %s, want 503 unavailable", id, r.status, r.body)
				}
			}
			if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "database file") {
				t.Errorf("no error logged naming the database file:\n%s", log.String())
			}
			r := f.do(call{method: http.MethodGet, path: "/readyz"})
			want := f.cat.Text("en", "error.not_writable", nil)
			if e := decodeInto[errorBody](t, r); r.status != http.StatusServiceUnavailable || e.Error.Message != want {
				t.Errorf("readyz after the fault = %d %s, want 503 %q", r.status, r.body, want)
			}
			if tt.undo == nil {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("the server recreated %s", path)
				}
				return
			}
			tt.undo(t, path)
			if r := put("After"); r.status != http.StatusCreated {
				t.Errorf("write after the repair = %d %s, want 201", r.status, r.body)
			}
			if r := f.do(call{method: http.MethodGet, path: "/readyz"}); r.status != http.StatusOK {
				t.Errorf("readyz after the repair = %d %s, want 200", r.status, r.body)
			}
		})
	}
}
