package lcc

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a byte offset into a File's source, plus one; 0 means "no position".
type Pos int

// NoPos is the zero Pos.
const NoPos Pos = 0

// IsValid reports whether p names a place in a file.
func (p Pos) IsValid() bool { return p > 0 }

// File is a named source text with a table of line starts, used to turn a
// Pos into line:col only when a message is printed.
type File struct {
	Name  string
	Src   []byte
	lines []int // offsets of line starts
}

// NewFile indexes src for position lookups.
func NewFile(name string, src []byte) *File {
	f := &File{Name: name, Src: src, lines: []int{0}}
	for i, c := range src {
		if c == '\n' {
			f.lines = append(f.lines, i+1)
		}
	}
	return f
}

// Position is a human-readable place: file, 1-based line and column.
type Position struct {
	File string
	Line int
	Col  int
}

func (p Position) String() string {
	s := p.File
	if s == "" {
		s = "<input>"
	}
	if p.Line > 0 {
		s += fmt.Sprintf(":%d:%d", p.Line, p.Col)
	}
	return s
}

// Position converts p (from this file) to line and column.
func (f *File) Position(p Pos) Position {
	if f == nil {
		return Position{}
	}
	if !p.IsValid() {
		return Position{File: f.Name}
	}
	off := int(p) - 1
	i := sort.Search(len(f.lines), func(i int) bool { return f.lines[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return Position{File: f.Name, Line: i + 1, Col: off - f.lines[i] + 1}
}

// Severity tells an error from a warning.
type Severity int

const (
	SevError Severity = iota
	SevWarning
)

func (s Severity) String() string {
	if s == SevWarning {
		return "warning"
	}
	return "error"
}

// Error is one diagnostic with its place.
type Error struct {
	Pos      Position
	Severity Severity
	Msg      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Severity, e.Msg)
}

// ErrorList collects diagnostics, in the manner of go/scanner.ErrorList.
type ErrorList []*Error

// Add appends a diagnostic.
func (l *ErrorList) Add(pos Position, sev Severity, msg string) {
	*l = append(*l, &Error{Pos: pos, Severity: sev, Msg: msg})
}

// Sort orders diagnostics by file, line and column, errors before warnings
// at the same place.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Severity < b.Severity
	})
}

// Errors returns only the errors (not warnings).
func (l ErrorList) Errors() ErrorList {
	var out ErrorList
	for _, e := range l {
		if e.Severity == SevError {
			out = append(out, e)
		}
	}
	return out
}

// Warnings returns only the warnings.
func (l ErrorList) Warnings() ErrorList {
	var out ErrorList
	for _, e := range l {
		if e.Severity == SevWarning {
			out = append(out, e)
		}
	}
	return out
}

// HasErrors reports whether any diagnostic is an error.
func (l ErrorList) HasErrors() bool { return len(l.Errors()) > 0 }

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Err returns l as an error if it holds any error, else nil.
func (l ErrorList) Err() error {
	if l.HasErrors() {
		return l
	}
	return nil
}
