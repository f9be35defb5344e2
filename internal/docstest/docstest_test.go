package docstest

import (
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/dcrgate/dcrgate"
)

const fence = "```"

func doc(parts ...string) []byte { return []byte(strings.Join(parts, "\n") + "\n") }

func TestExtract(t *testing.T) {
	src := doc(
		"# Title",
		"## Storage",
		fence+"caddyfile",
		"storage caddy",
		fence,
		"<!-- caddyfile: site -->",
		fence+"caddyfile",
		"dcr",
		fence,
		fence+"sh say-hi",
		"echo hi",
		fence,
		"## JSON",
		"~~~json",
		`{"a": 1}`,
		"~~~",
	)
	blocks, err := Extract("x.md", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("want 4 blocks, got %d: %+v", len(blocks), blocks)
	}
	b := blocks[0]
	if b.Line != 3 || b.Lang != LangCaddyfile || b.Section != "Storage" || b.Body != "storage caddy\n" || b.Marker != "" {
		t.Fatalf("first block: %+v", b)
	}
	if blocks[1].Marker != ContextSite || blocks[2].Lang != "sh" || blocks[2].Info != "say-hi" || blocks[3].Lang != LangJSON || blocks[3].Section != "JSON" {
		t.Fatalf("blocks: %+v", blocks)
	}

	for name, bad := range map[string][]byte{
		"unclosed fence":         doc(fence+"caddyfile", "dcr"),
		"marker not before":      doc("<!-- caddyfile: dcr -->", "", fence+"caddyfile", "mtls", fence),
		"marker on a json block": doc("<!-- caddyfile: dcr -->", fence+"json", "{}", fence),
		"unknown context":        doc("<!-- caddyfile: route -->", fence+"caddyfile", "mtls", fence),
		"marker at the end":      doc("text", "<!-- caddyfile: dcr -->"),
	} {
		if _, err := Extract("x.md", bad); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestContextOf(t *testing.T) {
	for body, want := range map[string]string{
		"{\n\tadmin off\n}\n":                ContextFull,
		"bank.example.com {\n\trespond 1\n}": ContextFull,
		":443 {\n}":                          ContextFull,
		"localhost {\n}":                     ContextFull,
		"# comment\ndcr /register {\n}":      ContextSite,
		"@m path /x\nrespond @m 404":         ContextSite,
		"reverse_proxy localhost:9080":       ContextSite,
		"mtls":                               ContextDCR,
		"access_token {\n}":                  ContextDCR,
		"storage caddy":                      ContextDCR,
		"registrar local":                    ContextDCR,
	} {
		if got := ContextOf(Block{Body: body}); got != want {
			t.Errorf("%q: want %s, got %s", body, want, got)
		}
	}
	if got := ContextOf(Block{Body: "storage caddy", Marker: ContextGlobal}); got != ContextGlobal {
		t.Errorf("the marker wins: got %s", got)
	}
}

// The checker passes valid snippets and fails each kind of broken one, naming the doc line.
func TestCheckCaddyfileBlocks(t *testing.T) {
	env := NewEnv(t)
	good := doc(
		"## Example",
		fence+"caddyfile",
		"dcr /register {",
		"\tmtls",
		"\tsoftware_statement {",
		"\t\tdirectory \"OpenBanking Ltd\" {",
		"\t\t\tjwks_file sandbox/directory/jwks.json",
		"\t\t\tjwks_hosts localhost:8443",
		"\t\t}",
		"\t}",
		"\tstorage caddy {",
		"\t\tprefix dcr",
		"\t}",
		"}",
		fence,
		"<!-- caddyfile: global -->",
		fence+"caddyfile",
		"admin off",
		fence,
		fence+"caddyfile-syntax",
		"storage caddy [{ prefix <p> }]",
		fence,
	)
	r := Check("good.md", good, env)
	if len(r.Errors) != 0 || r.Caddyfile != 2 || r.Syntax != 1 {
		t.Fatalf("want the good doc to pass with 2 blocks adapted and 1 summary, got %+v", r)
	}

	for name, tc := range map[string]struct {
		block []string
		want  string
	}{
		"one-line block form": {[]string{"storage caddy { prefix dcr; sweep_interval 1m }"},
			"good.md:2: adapting the caddyfile block (as dcr): Unexpected next token after '{' on same line, at good.md:3"},
		"elided block":       {[]string{"dcr {", "\tsoftware_statement { ... }", "}"}, "Unexpected next token"},
		"unknown dcr option": {[]string{"dcr {", "\tmax_body 1KiB", "}"}, `unknown dcr option or protection "max_body", at good.md:4`},
		"placeholder value":  {[]string{"max_body_size <size>"}, "<size>"},
		"alternatives":       {[]string{"default_policy on|off"}, "on|off"},
		"unknown directive":  {[]string{"dcr_discover"}, "unrecognized directive: dcr_discover"},
		"unclosed brace":     {[]string{"dcr {", "\tmtls"}, "good.md:2: the caddyfile block leaves 1 brace(s) unclosed"},
		"stray brace":        {[]string{"mtls", "}"}, "closes a brace it never opened, at good.md:4"},
	} {
		src := doc(append(append([]string{"## Broken", fence + "caddyfile"}, tc.block...), fence)...)
		r := Check("good.md", src, env)
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), tc.want) {
			t.Errorf("%s: want one error containing %q, got %v", name, tc.want, r.Errors)
		}
	}

	orphan := doc("## Syntax only", fence+"caddyfile-syntax", "storage caddy [{ prefix <p> }]", fence, "## Next", fence+"caddyfile", "mtls", fence)
	if r := Check("syntax.md", orphan, env); len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "needs a ```caddyfile example") {
		t.Errorf("a syntax summary without an example: want one error, got %v", r.Errors)
	}
}

func TestCheckJSONBlocks(t *testing.T) {
	env := NewEnv(t)
	handler := func(protection string) []string {
		return []string{fence + "json", `{"handler": "dcr", "protections": [` + protection + `], "storage": {"storage": "caddy"}}`, fence}
	}
	ssa := `{"protection": "software_statement", "directories": [{"issuer": "OB", "keys": {"file": "sandbox/directory/jwks.json"}, "jwks_hosts": ["localhost:8443"]}]}`
	if r := Check("j.md", doc(handler(ssa)...), env); len(r.Errors) != 0 || r.JSON != 1 {
		t.Fatalf("a valid handler config: %+v", r)
	}
	plain := doc(fence+"json", `{"msg": "policy decision", "allow": false}`, fence)
	if r := Check("j.md", plain, env); len(r.Errors) != 0 {
		t.Fatalf("JSON that is no config only has to parse: %v", r.Errors)
	}

	for name, tc := range map[string]struct {
		src  []byte
		want string
	}{
		"not JSON":            {doc(fence+"json", `{"handler": "dcr",}`, fence), "does not parse"},
		"a fragment":          {doc(fence+"json", `"storage": {"storage": "caddy"}`, fence), "more than one JSON value"},
		"unknown field":       {doc(handler(`{"protection": "signed_request", "audience": ["a"], "leway": "30s"}`)...), `unknown field "leway"`},
		"unknown module":      {doc(handler(`{"protection": "mtlz"}`)...), "dcr.protections.mtlz"},
		"unknown storage":     {doc(fence+"json", `{"storage": "caddy", "prefx": "dcr"}`, fence), `unknown field "prefx"`},
		"missing keys file":   {doc(handler(strings.Replace(ssa, "directory/jwks.json", "nowhere.json", 1))...), "provisioning"},
		"not a Caddy config":  {doc(fence+"json", `{"apps": {}, "admn": {}}`, fence), `unknown field "admn"`},
		"no directory in SSA": {doc(handler(`{"protection": "software_statement"}`)...), "provisioning"},
	} {
		r := Check("j.md", tc.src, env)
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), tc.want) || !strings.Contains(r.Errors[0].Error(), "j.md:1") {
			t.Errorf("%s: want one error at j.md:1 containing %q, got %v", name, tc.want, r.Errors)
		}
	}
}

func TestFillSandbox(t *testing.T) {
	got := FillSandbox(`jwks_file sandbox/directory/jwks.json "./sandbox/ca/bundle.pem" https://localhost:8443/sandbox/jwks/ /srv/sandbox/x`, "/tmp/sb")
	want := `jwks_file /tmp/sb/directory/jwks.json "/tmp/sb/ca/bundle.pem" https://localhost:8443/sandbox/jwks/ /srv/sandbox/x`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
