package lcc

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: the parser never panics, whatever the input; what parses
// cleanly prints to a form that parses back to the same model; and the
// checker never panics on a parsed model.
func FuzzParse(f *testing.F) {
	for _, pat := range []string{"testdata/*.lcc", "testdata/conformance/*.lcc", "testdata/golden/*.lcc"} {
		files, _ := filepath.Glob(pat)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("a(r, X) :: (((( null"))
	f.Add([]byte("'\\"))
	f.Add([]byte("a(r,X)::m=>a(s,Y)<-p<-q"))
	f.Add([]byte("a(r, X) :: m(P, Q) <= a(s, S) <- a(P, Q) == a(1, 2)."))
	f.Add([]byte("a(r, X) :: a(P, Q) = a(1, 2) and a(1, 2) \\== b <- null."))
	f.Fuzz(func(t *testing.T, src []byte) {
		m, errs := Parse("fuzz.lcc", src)
		if m == nil {
			t.Fatal("nil model")
		}
		if len(errs) > MaxErrors {
			t.Fatalf("%d errors, over the limit", len(errs))
		}
		for _, e := range errs {
			if e.Pos.Line < 1 && len(src) > 0 {
				t.Fatalf("error without a line: %v", e)
			}
		}
		if errs.HasErrors() {
			return
		}
		Check(m, nil)
		out := Format(m)
		m2, errs2 := Parse("printed", []byte(out))
		if errs2.HasErrors() {
			t.Fatalf("printed form does not parse: %v\n--- input\n%q\n--- printed\n%s", errs2, src, out)
		}
		if !reflect.DeepEqual(stripPos(m), stripPos(m2)) {
			t.Fatalf("parse(print(m)) != m\n--- input\n%q\n--- printed\n%s", src, out)
		}
	})
}
