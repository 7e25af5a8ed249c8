package lcc

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReferenceExamples runs every ```lcc example of REFERENCE.md, the
// language reference, as a conformance case (its header comments say how),
// so that the page cannot drift from the interpreter.
func TestReferenceExamples(t *testing.T) {
	b, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	for _, part := range strings.Split(string(b), "```lcc\n")[1:] {
		body, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatal("an lcc example is not closed")
		}
		examples = append(examples, body)
	}
	if len(examples) < 8 {
		t.Fatalf("only %d examples in REFERENCE.md", len(examples))
	}
	for i, src := range examples {
		name := "REFERENCE.md example " + strconv.Itoa(i+1)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runCase(t, name, []byte(src), readCase(t, name, []byte(src)))
		})
	}
}
