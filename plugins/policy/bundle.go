package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/util"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/policies"
)

// DefaultDecision is the query whose value is the decision.
const DefaultDecision = "data.dcr.decision"

// EmbeddedPrefix names the modules of the embedded default set (and, with
// EmbeddedPrefix+"examples/<file>", an embedded example) wherever a module path is accepted.
const EmbeddedPrefix = "embedded:"

// Bundle is the text of one policy set: what is compiled, and what its identity (Hash) is
// made of, so that equal sets share one compiled engine across modules and reloads.
type Bundle struct {
	// Modules maps a module name (its path, or embedded:<file>) to its Rego source.
	Modules map[string]string
	// Data is the merged data document.
	Data map[string]any
	// Decision is the query of the decision, e.g. data.dcr.decision.
	Decision string
}

// Sources say where a policy set comes from.
type Sources struct {
	// Defaults includes the embedded default set (its modules and its data.json).
	Defaults bool
	// Modules are .rego files or directories (walked; *_test.rego skipped), or
	// embedded:<path> for an embedded file such as embedded:examples/org_scope_ceilings.rego.
	Modules []string
	// Data are JSON or YAML documents (files, or directories of .json/.yaml/.yml files), each
	// deep-merged at the root of data after the defaults, later ones winning.
	Data []string
	// Decision is the decision query; default DefaultDecision.
	Decision string
	// Profile is the OB profile of the dcr handler the policy runs in (defaults filled),
	// shown to Rego as data.dcrgate.profile (ProfileData); nil = the default profile.
	Profile *obprofile.Config
}

// ProfileDataKey and ProfileDataMember place the OB profile in data: data.dcrgate.profile.
const (
	ProfileDataKey    = "dcrgate"
	ProfileDataMember = "profile"
)

// ProfileData is the profile as Rego sees it in data.dcrgate.profile: the effective
// configuration under its JSON (and Caddyfile) names, role_scopes among them. The profile in
// Go owns these rules; the policy reads them and cannot change them, so data documents that
// set data.dcrgate.profile are overridden.
func ProfileData(cfg *obprofile.Config) (map[string]any, error) {
	var c obprofile.Config
	if cfg != nil {
		c = *cfg
	}
	c.SetDefaults()
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := util.UnmarshalJSON(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Load reads the sources into a bundle.
func Load(src Sources) (*Bundle, error) {
	b := &Bundle{Modules: map[string]string{}, Data: map[string]any{}, Decision: src.Decision}
	if b.Decision == "" {
		b.Decision = DefaultDecision
	}
	if src.Defaults {
		entries, err := fs.Glob(policies.FS, "*.rego")
		if err != nil {
			return nil, err
		}
		for _, name := range entries {
			if isTest(name) {
				continue
			}
			if err := b.addEmbedded(name); err != nil {
				return nil, err
			}
		}
		raw, err := fs.ReadFile(policies.FS, policies.DataFile)
		if err != nil {
			return nil, err
		}
		if err := b.mergeData(EmbeddedPrefix+policies.DataFile, raw); err != nil {
			return nil, err
		}
	}
	for _, m := range src.Modules {
		if name, ok := strings.CutPrefix(m, EmbeddedPrefix); ok {
			if err := b.addEmbedded(path.Clean(name)); err != nil {
				return nil, err
			}
			continue
		}
		err := walkFiles(m, func(p string) bool { return strings.HasSuffix(p, ".rego") && !isTest(p) }, func(p string, content []byte) error {
			b.Modules[p] = string(content)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policy modules: %w", err)
		}
	}
	for _, d := range src.Data {
		err := walkFiles(d, isDataFile, b.mergeData)
		if err != nil {
			return nil, fmt.Errorf("policy data: %w", err)
		}
	}
	if len(b.Modules) == 0 {
		return nil, errors.New("no Rego modules: enable the defaults or name module files or directories")
	}
	profile, err := ProfileData(src.Profile)
	if err != nil {
		return nil, fmt.Errorf("policy data: the OB profile: %w", err)
	}
	ours, _ := b.Data[ProfileDataKey].(map[string]any)
	if ours == nil {
		ours = map[string]any{}
		b.Data[ProfileDataKey] = ours
	}
	ours[ProfileDataMember] = profile
	return b, nil
}

func (b *Bundle) addEmbedded(name string) error {
	content, err := fs.ReadFile(policies.FS, name)
	if err != nil {
		return fmt.Errorf("embedded policy %q: %w", name, err)
	}
	b.Modules[EmbeddedPrefix+name] = string(content)
	return nil
}

func (b *Bundle) mergeData(name string, raw []byte) error {
	var doc any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: a data document must be a JSON or YAML object", name)
	}
	mergeInto(b.Data, obj)
	return nil
}

// mergeInto deep-merges src into dst: objects merge key by key, anything else is replaced.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
			c := map[string]any{}
			mergeInto(c, sv)
			dst[k] = c
			continue
		}
		dst[k] = v
	}
}

// Hash identifies the bundle by content: module names and sources, data and decision.
func (b *Bundle) Hash() string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(b.Modules)) {
		fmt.Fprintf(h, "module %q %d\n%s\n", name, len(b.Modules[name]), b.Modules[name])
	}
	data, _ := json.Marshal(b.Data) // map keys are sorted by encoding/json
	fmt.Fprintf(h, "data %d\n%s\ndecision %q\n", len(data), data, b.Decision)
	return hex.EncodeToString(h.Sum(nil))
}

func isTest(p string) bool { return strings.HasSuffix(p, "_test.rego") }

func isDataFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// walkFiles calls fn for root if it is a file, or for every matching file below it, in
// lexical order, if it is a directory.
func walkFiles(root string, match func(string) bool, fn func(string, []byte) error) error {
	info, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		content, err := os.ReadFile(root)
		if err != nil {
			return err
		}
		return fn(root, content)
	}
	found := false
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !match(p) {
			return err
		}
		found = true
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fn(p, content)
	})
	if err == nil && !found {
		return fmt.Errorf("%s: no matching files in the directory", root)
	}
	return err
}
