// Package docstest checks the code blocks of the project's Markdown documentation against the
// code: every ```caddyfile block is adapted with the real Caddyfile adapter, every ```json
// block is parsed and, when it is a Caddy module's config, loaded strictly (unknown fields
// fail) and provisioned where that touches nothing outside the machine. A doc that stops
// matching the code fails `go test` (docs/docs_test.go runs it over README.md and docs/*.md).
//
// The conventions a doc writer follows:
//
//   - ```caddyfile is a real Caddyfile or a fragment of one. A fragment is wrapped before it
//     is adapted, by its first token: "{" (global options) or a site address → adapted as it
//     is; a dcr option or protection (mtls, software_statement, access_token, policy, storage,
//     registrar, profile, …) → inside `dcr /register { … }` in a site block; any other
//     directive or a @matcher → inside a site block. A marker comment on the line right
//     before the fence overrides the guess: <!-- caddyfile: full|global|site|dcr -->.
//     Elide with comments (`# as above`), never with `{ ... }`, which does not parse.
//   - ```caddyfile-syntax is a syntax summary (<placeholders>, a|b alternatives, [optional]
//     parts): it is not adapted, so its section must also hold at least one ```caddyfile
//     example, which is.
//   - Paths below sandbox/ (or ./sandbox/) point into a real sandbox laid out by the test,
//     so a config that reads sandbox files can be provisioned.
package docstest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Languages the checker acts on; fences with any other info string are left alone.
const (
	LangCaddyfile       = "caddyfile"
	LangCaddyfileSyntax = "caddyfile-syntax"
	LangJSON            = "json"
)

// Block is one fenced code block of a Markdown file.
type Block struct {
	File    string // as given to Extract
	Line    int    // 1-based line of the opening fence
	Lang    string // the info string's first word, lower-cased
	Info    string // the rest of the info string (e.g. a name a test finds the block by)
	Marker  string // the context named by a <!-- caddyfile: … --> comment right before the fence
	Section string // the nearest heading above the block ("" before the first one)
	Body    string
}

// Where is file:line, for messages.
func (b Block) Where() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

var (
	fenceRE   = regexp.MustCompile("^ {0,3}(```+|~~~+)[ \t]*([^ \t`]*)([^`]*)$")
	headingRE = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$`)
	markerRE  = regexp.MustCompile(`^\s*<!--\s*caddyfile:\s*(\S*)\s*-->\s*$`)
)

// Extract returns the fenced code blocks of a Markdown document. An unclosed fence, or a
// marker comment that is not followed by a ```caddyfile fence, is an error: either would
// let a block escape the check silently.
func Extract(file string, src []byte) ([]Block, error) {
	var (
		blocks  []Block
		section string
		open    *Block
		fence   string
		body    strings.Builder
		marker  string
		markerL int
	)
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if open != nil {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				open.Body = body.String()
				blocks = append(blocks, *open)
				open = nil
				continue
			}
			body.WriteString(line)
			body.WriteByte('\n')
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			lang := strings.ToLower(m[2])
			open = &Block{File: file, Line: n, Lang: lang, Info: strings.TrimSpace(m[3]), Section: section}
			fence = m[1]
			body.Reset()
			if marker != "" {
				if lang != LangCaddyfile {
					return nil, fmt.Errorf("%s:%d: the caddyfile marker is followed by a %q block, not a caddyfile one", file, markerL, lang)
				}
				open.Marker = marker
			}
			marker = ""
			continue
		}
		if marker != "" {
			return nil, fmt.Errorf("%s:%d: the caddyfile marker must stand on the line right before a ```caddyfile fence", file, markerL)
		}
		if m := markerRE.FindStringSubmatch(line); m != nil {
			marker, markerL = m[1], n
			if !validMarker(marker) {
				return nil, fmt.Errorf("%s:%d: unknown caddyfile context %q (want full, global, site or dcr)", file, n, marker)
			}
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			section = m[1]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if open != nil {
		return nil, fmt.Errorf("%s:%d: the code block is never closed", file, open.Line)
	}
	if marker != "" {
		return nil, fmt.Errorf("%s:%d: the caddyfile marker is not followed by a code block", file, markerL)
	}
	return blocks, nil
}

// CheckSyntaxExamples requires a ```caddyfile example in the section of every
// ```caddyfile-syntax summary, so that no syntax goes untested.
func CheckSyntaxExamples(blocks []Block) []error {
	examples := map[string]bool{}
	for _, b := range blocks {
		if b.Lang == LangCaddyfile {
			examples[b.File+"\x00"+b.Section] = true
		}
	}
	var errs []error
	for _, b := range blocks {
		if b.Lang == LangCaddyfileSyntax && !examples[b.File+"\x00"+b.Section] {
			errs = append(errs, fmt.Errorf("%s: a caddyfile-syntax summary needs a ```caddyfile example in its section (%q)", b.Where(), b.Section))
		}
	}
	return errs
}
