package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func externalOf(extra ...string) map[string]map[string]bool {
	ext := map[string]map[string]bool{}
	for path, names := range starters {
		ext[path] = map[string]bool{}
		for _, n := range names {
			ext[path][n] = true
		}
	}
	for _, p := range extra {
		ext[p] = nil
	}
	return ext
}

func writeFiles(t *testing.T, files map[string]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return dir, names
}

func TestAnalyseFollowsReferences(t *testing.T) {
	dir, files := writeFiles(t, map[string]string{"a_test.go": `package p_test

import (
	"testing"

	gt "github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/redistest"
	"example.com/uses/helpers"
)

func helper(t *testing.T) { gt.Start(t, gt.Options{}) }

type fixture struct{}

func (fixture) up(t *testing.T) { helper(t) }

var table = []func(*testing.T){helper}

func TestDirect(t *testing.T)      { gt.StartOIDCProvider(t, gt.OIDCProviderOptions{}) }
func TestRedis(t *testing.T)       { redistest.New(t, 1) }
func TestViaHelper(t *testing.T)   { helper(t) }
func TestViaMethod(t *testing.T)   { fixture{}.up(t) }
func TestViaTable(t *testing.T)    { table[0](t) }
func TestViaClosure(t *testing.T)  { t.Run("x", func(t *testing.T) { helper(t) }) }
func TestViaPackage(t *testing.T)  { helpers.Anything() }
func TestPortOnly(t *testing.T)    { _ = gt.FreePort(t); _ = gt.DefaultDCRBlock }
func TestPlain(t *testing.T)       {}
func Testlower(t *testing.T)       { helper(t) }
func BenchmarkX(b *testing.B)      { helper(nil) }
`})
	got, err := analyse(dir, files, externalOf("example.com/uses/helpers"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"TestDirect", "TestRedis", "TestViaClosure", "TestViaHelper", "TestViaMethod", "TestViaPackage", "TestViaTable"}
	if !slices.Equal(got, want) {
		t.Errorf("integration tests = %v, want %v", got, want)
	}
}

func TestAnalyseTestMainSelectsThePackage(t *testing.T) {
	dir, files := writeFiles(t, map[string]string{
		"main_test.go": "package p\n\nimport (\n\t\"testing\"\n\t\"github.com/dcrgate/dcrgate/internal/redistest\"\n)\n\nfunc TestMain(m *testing.M) { redistest.ServerPath(nil); m.Run() }\n",
		"b_test.go":    "package p\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\nfunc TestB(t *testing.T) {}\n",
		"p.go":         "package p\n\nfunc TestNotATestFile(t int) {}\n",
	})
	got, err := analyse(dir, files, externalOf())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"TestA", "TestB"}; !slices.Equal(got, want) {
		t.Errorf("integration tests = %v, want %v", got, want)
	}
}

// On the repository's own sources: a test that runs the binary through a helper is selected,
// the in-process command tests are not.
func TestAnalyseRepository(t *testing.T) {
	for _, c := range []struct {
		dir      string
		in, out  string
		internal bool
	}{
		{dir: "../../caddymodule", in: "TestLifecycleThroughCLI", out: "TestCaddyfileAdapt"},
		{dir: "../../caddymodule/dcrcmd", out: "TestSandboxInit", internal: true},
		{dir: "../../examples", in: "TestRunUpstream", out: "TestCaddyfilesFollowEnv"},
	} {
		matches, _ := filepath.Glob(filepath.Join(c.dir, "*.go"))
		var files []string
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			// One package at a time: the external test package (or the internal one).
			external := strings.Contains(string(b), "package "+filepath.Base(c.dir)+"_test")
			if external != c.internal {
				files = append(files, filepath.Base(m))
			}
		}
		got, err := analyse(c.dir, files, externalOf())
		if err != nil {
			t.Fatal(err)
		}
		if c.in != "" && !slices.Contains(got, c.in) {
			t.Errorf("%s: %s not selected (%v)", c.dir, c.in, got)
		}
		if slices.Contains(got, c.out) {
			t.Errorf("%s: %s selected", c.dir, c.out)
		}
	}
}

func TestFormat(t *testing.T) {
	got := Format(Selection{"x/b": {"TestB", "TestA"}, "x/a": {"TestA"}})
	if want := "^(TestA|TestB)$ x/a x/b"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}
