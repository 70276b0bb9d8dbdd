package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/sqlite"
)

// report prints err once, on one line — the localized message, then the
// stable code — and returns the exit status. The internal cause (which
// store, which operation) follows only with --verbose; an invalid policy's
// problems follow, one per line, as they name file:line.
func (m *Main) report(err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errDenied):
		return exitDenied
	case errors.Is(err, errUsage):
		msg := strings.TrimSuffix(err.Error(), ": usage")
		var ue *usageError
		if errors.As(err, &ue) {
			msg = m.text(ue.ID, ue.Data)
		}
		fmt.Fprintf(m.Stderr, "gatehouse: %s (%s)\n", msg, codeUsage)
		switch {
		case m.group != "":
			m.printGroup(m.Stderr, m.group)
		case m.cmd != nil:
			fmt.Fprintf(m.Stderr, "usage: gatehouse %s %s\n%s\n", m.cmd.name, m.cmd.usage, m.text("cli.usage.hint_command", map[string]any{"Command": m.cmd.name}))
		default:
			fmt.Fprintln(m.Stderr, m.text("cli.usage.hint", nil))
		}
		return exitUsage
	}
	code := gatehouse.ErrorCode(err)
	fmt.Fprintf(m.Stderr, "gatehouse: %s (%s)\n", m.errorText(err), code)
	var perr *policy.Error
	if errors.As(err, &perr) {
		for _, p := range perr.Problems {
			fmt.Fprintf(m.Stderr, "  %s\n", p)
		}
	} else if m.Config.Verbose {
		fmt.Fprintf(m.Stderr, "  cause: %v\n", err)
	}
	if code == gatehouse.CodeInternal {
		return exitInternal
	}
	return exitUsage
}

// detailCodes are the codes whose catalog message is generic ("Not
// found."): the error's own detail says what.
var detailCodes = map[string]error{
	gatehouse.CodeInvalid:           gatehouse.ErrInvalid,
	gatehouse.CodeNotFound:          gatehouse.ErrNotFound,
	gatehouse.CodeIllegalTransition: gatehouse.ErrIllegalTransition,
	gatehouse.CodeActionExpired:     gatehouse.ErrActionExpired,
	gatehouse.CodeCorrupt:           gatehouse.ErrCorrupt,
	gatehouse.CodeForbidden:         gatehouse.ErrForbidden,
}

// storeError is a store that could not be opened for a reason the store
// does not classify: a PostgreSQL server that does not answer, a path
// component that is a file.
type storeError struct {
	Store string
	Err   error
}

func (e *storeError) Error() string { return e.Err.Error() }
func (e *storeError) Unwrap() error { return e.Err }

// errorText is err's localized message.
func (m *Main) errorText(err error) string {
	var oe *sqlite.OpenError
	if errors.As(err, &oe) {
		return m.text("cli.db."+string(oe.Problem), map[string]any{"Path": oe.Path, "Dir": filepath.Dir(oe.Path)})
	}
	var se *storeError
	if errors.As(err, &se) {
		msg := m.text("cli.db.unreachable", map[string]any{"Store": se.Store})
		if !m.Config.Verbose {
			msg += " " + m.text("cli.verbose_hint", nil)
		}
		return msg
	}
	var perr *policy.Error
	if errors.As(err, &perr) {
		return m.text("cli.policy_invalid", nil)
	}
	code := gatehouse.ErrorCode(err)
	if sentinel := detailCodes[code]; sentinel != nil {
		if d := errorDetail(err, sentinel); d != "" {
			return m.text("cli.error."+code, map[string]any{"Detail": d})
		}
	}
	msg := m.text("error."+code, nil)
	switch code {
	case gatehouse.CodeInternal, gatehouse.CodeUnavailable:
		if !m.Config.Verbose {
			msg += " " + m.text("cli.verbose_hint", nil)
		}
	}
	return msg
}

// errorDetail is what the innermost error still matching sentinel says of
// itself — `action x is pending and cannot become executed` of `sqlite
// g.db: transition action: action x is pending and cannot become executed:
// illegal action transition` — without the operations that wrapped it and
// the sentinel's own text.
func errorDetail(err, sentinel error) string {
	detail := ""
	for e := err; e != nil && e != sentinel; e = errors.Unwrap(e) {
		if errors.Is(e, sentinel) {
			detail = e.Error()
		}
	}
	return strings.TrimSuffix(detail, ": "+sentinel.Error())
}

// text is catalog message id in the run's language.
func (m *Main) text(id string, data any) string {
	if m.catalog == nil {
		cat, err := locale.New()
		if err != nil {
			return id
		}
		m.catalog = cat
	}
	return m.catalog.Text(m.lang(), id, data)
}
