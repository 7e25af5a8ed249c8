package test

import (
	"bufio"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/parleyhq/parley"

// goPackage is what 'go list -json' says of one package.
type goPackage struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) map[string]*goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = ".."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]*goPackage{}
	dec := json.NewDecoder(out)
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = &p
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// deps is the transitive closure of a package's non-test imports, the
// standard library included.
func deps(pkgs map[string]*goPackage, std map[string][]string, root string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		imps := std[p]
		if gp, ok := pkgs[p]; ok {
			imps = gp.Imports
		}
		for _, i := range imps {
			walk(i)
		}
	}
	walk(root)
	delete(seen, root)
	return seen
}

// stdImports lists the standard library's import graph, so that a
// transitive net/http is found behind another standard package.
func stdImports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "std")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	return m
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

// TestLayering fails when an import breaks the layers of the design: the
// language knows nothing of parley or HTTP, vSphere nothing of parley but
// itself, the store never the agent or vSphere, the agent never the
// store's server or the simulator, and nothing imports the binary.
func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	std := stdImports(t)
	parleyDeps := func(p string) []string {
		var out []string
		for d := range deps(pkgs, std, module+"/"+p) {
			if strings.HasPrefix(d, module) {
				out = append(out, rel(d))
			}
		}
		sort.Strings(out)
		return out
	}
	type rule struct {
		pkg     string
		allowed func(dep string) bool
		why     string
	}
	for _, r := range []rule{
		{"lcc", func(string) bool { return false }, "the language imports nothing of parley"},
		{"policies", func(d string) bool { return d == "lcc" }, "policies import only the language"},
		{"vsphere", func(d string) bool { return strings.HasPrefix(d, "vsphere/") }, "vsphere imports nothing of parley but its own sim"},
		{"vsphere/sim", func(d string) bool { return d == "vsphere" }, "the simulator imports nothing of parley but vsphere"},
		{"raftstore", func(d string) bool { return d == "lcc" || d == "raftstore/pki" || d == "raftstore/api" }, "the store never imports the agent or vSphere"},
		{"raftstore/pki", func(string) bool { return false }, "certificates are parley's lowest layer, shared by every part"},
		{"raftstore/api", func(string) bool { return false }, "the contract's words import nothing of parley"},
		{"worker", func(d string) bool {
			return d == "lcc" || d == "policies" || d == "raftstore" || d == "raftstore/pki" || d == "raftstore/api" || d == "vsphere"
		}, "the agent imports clients, never the simulator or the assemblies"},
	} {
		for _, d := range parleyDeps(r.pkg) {
			if !r.allowed(d) {
				t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
			}
		}
	}
	if d := deps(pkgs, std, module+"/lcc"); d["net/http"] {
		t.Error("lcc depends on net/http: the language knows nothing of HTTP")
	}
	for _, p := range pkgs {
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, i := range list {
				if strings.HasPrefix(i, module+"/cmd") {
					t.Errorf("%s imports %s: nothing imports the binary", rel(p.ImportPath), rel(i))
				}
			}
		}
	}
	// The agent may use raftstore's client and wire types, never its
	// server: looked for in the worker's source, since both live in one
	// package.
	server := map[string]bool{"Start": true, "Member": true, "Config": true, "DefaultConfig": true, "Open": true,
		"Store": true, "FSM": true, "NewFSM": true, "Mem": true, "NewMem": true}
	w := pkgs[module+"/worker"]
	if w == nil {
		t.Fatal("no worker package")
	}
	for _, f := range w.GoFiles {
		path := filepath.Join(w.Dir, f)
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "raftstore" && server[sel.Sel.Name] {
				t.Errorf("worker/%s uses raftstore.%s: the agent is a client of the store, not a member", f, sel.Sel.Name)
			}
			return true
		})
	}
}

// TestNoLargeFiles: no non-test Go file grows past 600 lines; split by
// concern instead.
func TestNoLargeFiles(t *testing.T) {
	const limit = 600
	err := filepath.Walk("..", func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && (info.Name() == "testdata" || strings.HasPrefix(info.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if info.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), "\n"); n > limit {
			t.Errorf("%s has %d lines (limit %d): split it by concern", path, n, limit)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryPackageSaysWhatItOwns: each package has a doc comment.
func TestEveryPackageSaysWhatItOwns(t *testing.T) {
	for _, p := range listPackages(t) {
		fset := token.NewFileSet()
		documented := false
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil && strings.HasPrefix(strings.TrimSpace(file.Doc.Text()), "Package ") || file.Name.Name == "main" && file.Doc != nil {
				documented = true
			}
		}
		if !documented && len(p.GoFiles) > 0 {
			t.Errorf("package %s has no doc comment saying what it owns", rel(p.ImportPath))
		}
	}
}
