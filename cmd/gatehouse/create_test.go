package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeCreate: serve refuses a database path that names no file, so a
// mistyped path or a deleted file never starts an empty store that denies
// everything; --create starts one.
func TestServeCreate(t *testing.T) {
	t.Setenv("GATEHOUSE_JWT_SECRET", serveSecret)
	db := filepath.Join(t.TempDir(), "missing.db")
	res := run(t, db, "serve", "--addr", "127.0.0.1:0")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--create") {
		t.Errorf("serve on a missing file: exit %d, stderr %q; want %d naming --create", res.code, res.stderr, exitUsage)
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("serve without --create created %s", db)
	}

	r := start(t, db, "serve", "--addr", "127.0.0.1:0", "--create", "--allow-empty")
	r.waitFor(t, "serving http://")
	r.stop(t)
	if _, err := os.Stat(db); err != nil {
		t.Errorf("serve --create: %v", err)
	}
	// Now the file exists, serve needs no --create.
	r = start(t, db, "serve", "--addr", "127.0.0.1:0", "--allow-empty")
	r.waitFor(t, "serving http://")
	r.stop(t)
}
