package docstest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Contexts a Caddyfile block is adapted in.
const (
	ContextFull   = "full"   // adapted as it is
	ContextGlobal = "global" // inside the global options block
	ContextSite   = "site"   // inside a site block
	ContextDCR    = "dcr"    // inside `dcr /register { … }` in a site block
)

func validMarker(m string) bool {
	switch m {
	case ContextFull, ContextGlobal, ContextSite, ContextDCR:
		return true
	}
	return false
}

// dcrOptions are the handler's own subdirectives; the dcr.protections.* module names are
// added at run time, so a new protection is recognised without touching this list.
var dcrOptions = []string{"endpoint", "public_url", "max_size", "max_body_size", "default_policy", "profile", "storage", "registrar"}

var directiveNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ContextOf is the context a block is adapted in: its marker, or the guess from its first
// token (see the package documentation).
func ContextOf(b Block) string {
	if b.Marker != "" {
		return b.Marker
	}
	first := firstToken(b.Body)
	switch {
	case first == "{":
		return ContextFull
	case isDCROption(first):
		return ContextDCR
	case strings.HasPrefix(first, "@"), directiveNameRE.MatchString(first) && first != "localhost":
		return ContextSite
	default:
		return ContextFull
	}
}

func isDCROption(name string) bool {
	for _, o := range dcrOptions {
		if o == name {
			return true
		}
	}
	_, err := caddy.GetModule("dcr.protections." + name)
	return err == nil
}

func firstToken(body string) string {
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) > 0 {
			return f[0]
		}
	}
	return ""
}

// Wrap turns a block into a complete Caddyfile for its context. It returns the source and how
// many lines were put before the block's first line, to map error lines back to the doc.
func Wrap(body, context string) (string, int, error) {
	switch context {
	case ContextFull:
		return body, 0, nil
	case ContextGlobal:
		return "{\n" + body + "\n}\n", 1, nil
	case ContextSite:
		return "localhost:8443 {\n" + body + "\n}\n", 1, nil
	case ContextDCR:
		return "localhost:8443 {\n\tdcr /register {\n" + body + "\n\t}\n}\n", 2, nil
	}
	return "", 0, fmt.Errorf("unknown caddyfile context %q", context)
}

// sandboxPathRE finds relative sandbox paths: sandbox/… or ./sandbox/… at the start of a
// token (not /sandbox/… in a URL or an absolute path).
var sandboxPathRE = regexp.MustCompile(`(^|[\s"'=])(?:\./)?sandbox/`)

// FillSandbox points relative sandbox paths at dir.
func FillSandbox(src, dir string) string {
	if dir == "" {
		return src
	}
	return sandboxPathRE.ReplaceAllString(src, "${1}"+strings.ReplaceAll(dir, "$", "$$")+"/")
}

// balanced refuses a block whose braces do not close: wrapped in a site block, a missing
// "}" would be supplied by the wrapper's own and the fragment would pass.
func balanced(b Block) error {
	tokens, err := caddyfile.Tokenize([]byte(b.Body), b.File)
	if err != nil {
		return fmt.Errorf("%s: the caddyfile block does not tokenize: %v", b.Where(), err)
	}
	depth := 0
	for _, tok := range tokens {
		if tok.Quoted() {
			continue
		}
		switch tok.Text {
		case "{":
			depth++
		case "}":
			if depth--; depth < 0 {
				return fmt.Errorf("%s: the caddyfile block closes a brace it never opened, at %s:%d", b.Where(), b.File, b.Line+tok.Line)
			}
		}
	}
	if depth != 0 {
		return fmt.Errorf("%s: the caddyfile block leaves %d brace(s) unclosed", b.Where(), depth)
	}
	return nil
}

// lineRE finds the "Caddyfile:N" position the adapter puts in its messages.
var lineRE = regexp.MustCompile(`Caddyfile:(\d+)`)

// AdaptCaddyfile wraps the block for its context, fills in the sandbox and adapts it with
// the Caddyfile adapter of the modules linked into the test binary. It returns the JSON.
func AdaptCaddyfile(b Block, sandboxDir string) ([]byte, error) {
	if err := balanced(b); err != nil {
		return nil, err
	}
	ctx := ContextOf(b)
	src, offset, err := Wrap(b.Body, ctx)
	if err != nil {
		return nil, err
	}
	src = FillSandbox(src, sandboxDir)
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, fmt.Errorf("no caddyfile adapter is registered (import Caddy's standard modules)")
	}
	out, _, err := adapter.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		msg := lineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
			var n int
			fmt.Sscanf(m, "Caddyfile:%d", &n)
			return fmt.Sprintf("%s:%d", b.File, b.Line+n-offset)
		})
		return nil, fmt.Errorf("%s: adapting the caddyfile block (as %s): %s", b.Where(), ctx, msg)
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("%s: the adapter produced invalid JSON", b.Where())
	}
	return out, nil
}
