// Command testsplit prints the tests `make integration` runs: every Test function that starts
// a real process through internal/gatewaytest or internal/redistest (the helpers that skip in
// `go test -short`, i.e. under `make unit`), found by reading the test sources.
//
// Output, for `go test -run "$1" "${@:2}"`: one -run pattern, then the packages, separated by
// white space. A Test is selected when its body, or any function, method or package-level
// variable of its package that it refers to (transitively), calls one of the starting
// helpers; a TestMain that does selects the whole package. The analysis is by name, so it may
// select a test too many (which then runs under both targets), never one too few.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// starters are the helpers that start real processes (and skip in -short mode).
var starters = map[string][]string{
	"github.com/dcrgate/dcrgate/internal/gatewaytest": {"Binary", "Start", "StartOIDCProvider", "SkipInShortMode"},
	"github.com/dcrgate/dcrgate/internal/redistest":   {"Start", "New", "StartSentinel", "ServerPath"},
}

// pkgInfo is what `go list` says about one package.
type pkgInfo struct {
	ImportPath, Name, Dir string
	GoFiles, TestGoFiles  []string
	XTestGoFiles, Deps    []string
}

func main() {
	pkgs, err := list(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsplit:", err)
		os.Exit(1)
	}
	sel, err := integrationTests(pkgs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsplit:", err)
		os.Exit(1)
	}
	if len(sel) == 0 {
		fmt.Fprintln(os.Stderr, "testsplit: no integration tests found")
		os.Exit(1)
	}
	fmt.Println(Format(sel))
}

// list runs `go list` on patterns (default ./...).
func list(patterns []string) ([]pkgInfo, error) {
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	const tmpl = `{{.ImportPath}}|{{.Name}}|{{.Dir}}|{{join .GoFiles ","}}|{{join .TestGoFiles ","}}|{{join .XTestGoFiles ","}}|{{join .Deps ","}}`
	out, err := exec.Command("go", append([]string{"list", "-f", tmpl}, patterns...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []pkgInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 7 {
			return nil, fmt.Errorf("go list: unexpected line %q", sc.Text())
		}
		pkgs = append(pkgs, pkgInfo{ImportPath: f[0], Name: f[1], Dir: f[2], GoFiles: split(f[3]),
			TestGoFiles: split(f[4]), XTestGoFiles: split(f[5]), Deps: split(f[6])})
	}
	return pkgs, sc.Err()
}

// Selection maps an import path to its integration tests.
type Selection map[string][]string

// Format is the -run pattern and the packages, as main prints them.
func Format(sel Selection) string {
	names := map[string]bool{}
	var paths []string
	for p, tests := range sel {
		paths = append(paths, p)
		for _, t := range tests {
			names[t] = true
		}
	}
	var all []string
	for n := range names {
		all = append(all, n)
	}
	sort.Strings(all)
	sort.Strings(paths)
	return "^(" + strings.Join(all, "|") + ")$ " + strings.Join(paths, " ")
}

func integrationTests(pkgs []pkgInfo) (Selection, error) {
	// Every selector into one of these packages counts as starting a process: the helpers
	// themselves (only their starters) and any package that imports them.
	external := map[string]map[string]bool{}
	for path, names := range starters {
		external[path] = map[string]bool{}
		for _, n := range names {
			external[path][n] = true
		}
	}
	for _, p := range pkgs {
		if _, ok := starters[p.ImportPath]; ok {
			continue
		}
		for _, d := range p.Deps {
			if _, ok := starters[d]; ok {
				external[p.ImportPath] = nil // nil: every name
			}
		}
	}
	sel := Selection{}
	for _, p := range pkgs {
		// The internal test package sees the package's own files; the external one only its own.
		for _, files := range [][]string{append(append([]string{}, p.GoFiles...), p.TestGoFiles...), p.XTestGoFiles} {
			if len(files) == 0 {
				continue
			}
			tests, err := analyse(p.Dir, files, external)
			if err != nil {
				return nil, err
			}
			sel[p.ImportPath] = append(sel[p.ImportPath], tests...)
		}
		if len(sel[p.ImportPath]) == 0 {
			delete(sel, p.ImportPath)
		}
	}
	return sel, nil
}

// analyse parses files (one package) and returns its Test functions that reach a starter.
func analyse(dir string, files []string, external map[string]map[string]bool) ([]string, error) {
	fset := token.NewFileSet()
	type node struct {
		starts bool
		refs   []string // names of package-level declarations, or "."+method
		test   bool
	}
	nodes := map[string]*node{}
	add := func(key string, body ast.Node, imports map[string]string, test bool) {
		n := nodes[key]
		if n == nil {
			n = &node{}
			nodes[key] = n
		}
		n.test = n.test || test
		ast.Inspect(body, func(x ast.Node) bool {
			switch x := x.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok {
					if path, ok := imports[id.Name]; ok {
						if names, ext := external[path]; ext && (names == nil || names[x.Sel.Name]) {
							n.starts = true
						}
						return false
					}
				}
				n.refs = append(n.refs, "."+x.Sel.Name)
			case *ast.Ident:
				n.refs = append(n.refs, x.Name)
			}
			return true
		})
	}
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		imports := map[string]string{}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			imports[local] = path
		}
		isTestFile := strings.HasSuffix(name, "_test.go")
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				key := d.Name.Name
				if d.Recv != nil {
					key = "." + key
				}
				test := isTestFile && d.Recv == nil && (isTest(d) || key == "TestMain")
				add(key, d, imports, test)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, id := range s.Names {
							add(id.Name, s, imports, false)
						}
					case *ast.TypeSpec:
						add(s.Name.Name, s, imports, false)
					}
				}
			}
		}
	}
	// Reachability to a starter, to a fixed point.
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if n.starts {
				continue
			}
			for _, r := range n.refs {
				if m := nodes[r]; m != nil && m.starts {
					n.starts, changed = true, true
					break
				}
			}
		}
	}
	var out []string
	all := nodes["TestMain"] != nil && nodes["TestMain"].starts
	for key, n := range nodes {
		if n.test && key != "TestMain" && (n.starts || all) {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out, nil
}

// isTest reports whether d is func TestXxx(t *testing.T).
func isTest(d *ast.FuncDecl) bool {
	name := d.Name.Name
	if !strings.HasPrefix(name, "Test") || d.Type.Params == nil || len(d.Type.Params.List) != 1 {
		return false
	}
	if len(name) > 4 {
		if r := name[4]; r >= 'a' && r <= 'z' {
			return false
		}
	}
	star, ok := d.Type.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "T"
}
