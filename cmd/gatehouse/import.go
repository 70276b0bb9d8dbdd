package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// userImportCommand is `gatehouse user import`.
var userImportCommand = command{
	name: "user import", usage: "FILE|- [--dry-run] [--json]", store: true, minArgs: 1, maxArgs: 1,
	summary: "set many users' roles and tenants in one change, from CSV (email,roles,tenants; ;-separated) or JSON lines",
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.dryRun, "dry-run", false, "check the file and print the changes without applying them")
		fs.BoolVar(&o.jsonOut, "json", false, "print the changes as JSON")
	},
	run: runUserImport,
}

// maxImportProblems bounds the problems reported for one file: a file in
// the wrong format would otherwise print one per line.
const maxImportProblems = 100

func runUserImport(ctx context.Context, m *Main) error {
	path, name := m.args[0], m.args[0]
	in := m.Stdin
	if path == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return usage("file", "Detail", err)
		}
		defer f.Close()
		in = f
	}
	prog := newProgress(m.Stderr)
	records, err := readUserRecords(name, in, prog)
	if err != nil {
		prog.done()
		return err
	}
	prog.printf("%s: applying %d users…", name, len(records))
	res, err := m.svc.ImportUsers(ctx, m.Config.Actor, name, records, m.opts.dryRun)
	prog.done()
	return m.printResult(res, err)
}

// readUserRecords reads CSV with a header naming the columns email, roles
// and tenants (roles and tenants ;-separated, both optional), or JSON
// lines of {"email", "roles", "tenants"}: JSON lines when the first
// character is {. Every record carries its line; problems are reported
// all at once as a *policy.Error.
func readUserRecords(name string, r io.Reader, prog *progress) ([]service.UserRecord, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	var (
		records  []service.UserRecord
		problems []policy.Problem
	)
	report := func(line int, format string, args ...any) {
		problems = append(problems, policy.Problem{File: name, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	add := func(rec service.UserRecord) {
		records = append(records, rec)
		if len(records)%1000 == 0 {
			prog.printf("%s: read %d users", name, len(records))
		}
	}
	var err error
	if t := bytes.TrimLeft(head, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		err = readJSONLines(br, add, report)
	} else {
		err = readCSV(br, add, report)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(problems) > 0 {
		if len(problems) > maxImportProblems {
			problems = append(problems[:maxImportProblems], policy.Problem{File: name, Message: fmt.Sprintf("and %d more problems", len(problems)-maxImportProblems)})
		}
		return nil, &policy.Error{Problems: problems}
	}
	if len(records) == 0 {
		return nil, usage("no_users", "File", name)
	}
	return records, nil
}

func readJSONLines(r *bufio.Reader, add func(service.UserRecord), report func(int, string, ...any)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec service.UserRecord
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			report(line, "%v", err)
			continue
		}
		if dec.More() {
			report(line, "more than one JSON value on the line")
			continue
		}
		rec.Line = line
		add(rec)
	}
	return sc.Err()
}

// csvColumns are the columns of the CSV form; email is required.
var csvColumns = []string{"email", "roles", "tenants"}

func readCSV(r *bufio.Reader, add func(service.UserRecord), report func(int, string, ...any)) error {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvColumns, h) {
			report(1, "unknown column %q%s; the header names email, roles and tenants", h, policy.Suggest(h, csvColumns))
			continue
		}
		if _, dup := col[h]; dup {
			report(1, "column %q named twice", h)
		}
		col[h] = i
	}
	if _, ok := col["email"]; !ok {
		report(1, "the header names no email column (want email,roles,tenants)")
		return nil
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				report(pe.Line, "%v", pe.Err)
				continue
			}
			return err
		}
		add(service.UserRecord{Email: field(rec, "email"), Roles: list(field(rec, "roles")), Tenants: list(field(rec, "tenants")), Line: line})
	}
}

// list splits a ;-separated CSV field, dropping empty items.
func list(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ";") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// progress rewrites one status line on a terminal; elsewhere (a pipe, a
// log file, a test) it writes nothing.
type progress struct {
	w     io.Writer
	shown bool
}

func newProgress(w io.Writer) *progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &progress{w: w}
	}
	return &progress{}
}

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	p.shown = true
}

// done clears the status line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
