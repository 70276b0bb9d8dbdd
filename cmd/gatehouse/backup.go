package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/backup"
)

// runBackup writes the archive to stdout, or to -o FILE through a
// temporary file renamed into place, so a failed backup leaves no partial
// archive behind. What it wrote goes to stderr, beside an archive on stdout.
func runBackup(ctx context.Context, m *Main) error {
	write := func(w io.Writer) (backup.Header, error) {
		return backup.Write(ctx, w, m.store, time.Now())
	}
	var (
		h   backup.Header
		err error
	)
	if m.opts.output == "" {
		h, err = write(m.Stdout)
	} else {
		h, err = writeFileAtomic(m.opts.output, write)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "backed up %d objects (policy version %d) and %d audit events, head %d %s\n",
		h.Counts.Objects, h.PolicyVersion, h.Counts.Events, h.AuditHead.Seq, h.AuditHead.Hash)
	return nil
}

// writeFileAtomic writes path with write through a temporary file in the
// same directory that replaces path only once write succeeded.
func writeFileAtomic(path string, write func(w io.Writer) (backup.Header, error)) (backup.Header, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return backup.Header{}, usage("file", "Detail", err)
	}
	h, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return backup.Header{}, errors.Join(err, os.Remove(f.Name()))
	}
	return h, nil
}

func runRestore(ctx context.Context, m *Main) error {
	if m.opts.file == "" {
		return usage("file_required_stdin")
	}
	r, name := m.Stdin, "stdin"
	if m.opts.file != "-" {
		f, err := os.Open(m.opts.file)
		if err != nil {
			return usage("file", "Detail", err)
		}
		defer f.Close()
		r, name = f, m.opts.file
	}
	h, rep, err := backup.Restore(ctx, r, m.store)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "restored %d objects (policy version %d) and %d audit events from %s into %s\n",
		h.Counts.Objects, h.PolicyVersion, h.Counts.Events, name, m.Config.storeName())
	fmt.Fprintf(m.Stdout, "audit chain ok: %d events, head %d %s\n", rep.Events, rep.Head.Seq, rep.Head.Hash)
	return nil
}
