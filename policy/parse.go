// Package policy reads and writes the policy document — gatehouse.Policy as
// YAML or JSON — and validates it, reporting every problem with its file,
// line and path. It also diffs policies into object changes, merges a
// partial document over a stored policy, and imports the seed formats.
package policy

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// DefaultMaxDocument bounds the size of a document Parse accepts.
const DefaultMaxDocument = 64 << 20

// maxDocument bounds the seed formats' files.
const maxDocument = DefaultMaxDocument

// Document is a parsed, normalized and valid policy document.
type Document struct {
	Policy *gatehouse.Policy
	File   string
	// sections holds the top-level keys the document contains.
	sections map[string]bool
	pos      locator
}

// Has reports whether the document contains kind's section, even if empty.
func (d *Document) Has(kind gatehouse.Kind) bool { return d.sections[kind.Section()] }

// Parse reads a YAML, JSON or JSON-lines (see ParseLines) policy document named file, normalizes it
// (see Normalize) and validates it. All problems are reported at once as an
// *Error sorted by line. A document larger than DefaultMaxDocument is
// refused; ParseMax sets another bound.
func Parse(file string, data []byte) (*Document, error) {
	return ParseMax(file, data, DefaultMaxDocument)
}

// ParseMax is Parse for documents of at most max bytes. The document keeps
// data to locate the problems found after a Merge (Locate): the caller must
// not change it while it uses the document.
func ParseMax(file string, data []byte, max int64) (*Document, error) {
	if int64(len(data)) > max {
		return nil, &Error{Problems: []Problem{{File: file, Message: fmt.Sprintf("document larger than %d bytes", max)}}}
	}
	if IsLines(file, data[:min(len(data), 512)]) {
		return ParseLines(file, bytes.NewReader(data), max)
	}
	p := &gatehouse.Policy{}
	res := decodeInto(file, data, p, nil)
	if !res.ok {
		return nil, sortedError(res.problems)
	}
	problems := res.problems
	Normalize(p)
	d := &Document{Policy: p, File: file, sections: map[string]bool{}, pos: &lazyPositions{file: file, data: data}}
	for _, key := range res.sections {
		if topLevel[key] {
			d.sections[key] = true
		}
	}
	// References into sections the document omits are checked after Merge.
	absent := map[gatehouse.Kind]bool{}
	for _, kind := range gatehouse.Kinds {
		absent[kind] = !d.Has(kind)
	}
	if more := shadow(validate(p, absent, d.pos), problems); len(more) > 0 || len(problems) > 0 {
		return nil, d.Locate(append(problems, more...))
	}
	return d, nil
}

// shadow drops the problems found at or below the path of a decoding
// problem: a value that could not be decoded is reported once, not again as
// missing or unknown.
func shadow(problems, decoding []Problem) []Problem {
	out := problems[:0]
	for _, p := range problems {
		shadowed := false
		for _, dp := range decoding {
			if dp.Path == "" || p.Path == dp.Path || strings.HasPrefix(p.Path, dp.Path+".") || strings.HasPrefix(p.Path, dp.Path+"[") {
				shadowed = true
				break
			}
		}
		if !shadowed {
			out = append(out, p)
		}
	}
	return out
}

// Locate places problems found in a policy built from this document (such
// as Merge's result) at their lines in the document and returns them as an
// *Error; problems in sections the document omits keep only their path.
func (d *Document) Locate(problems []Problem) *Error {
	for i := range problems {
		if problems[i].Line == 0 && d.sections[sectionOf(problems[i].Path)] {
			pos := d.pos.locate(problems[i].Path)
			problems[i].File, problems[i].Line, problems[i].Column = d.File, pos.line, pos.column
		}
	}
	return sortedError(problems)
}

func sectionOf(path string) string {
	for i, r := range path {
		if r == '.' || r == '[' {
			return path[:i]
		}
	}
	return path
}

var topLevel = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range gatehouse.Kinds {
		m[k.Section()] = true
	}
	return m
}()

// ParseFile reads and parses the document at path.
func ParseFile(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

func sortedError(problems []Problem) *Error {
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return &Error{Problems: problems}
}
