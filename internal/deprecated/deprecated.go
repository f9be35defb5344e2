// Package deprecated reports the use of a configuration name of the previous release. A
// renamed option keeps working for one release (README "Renamed options"); each use is logged
// as a warning on the "dcr" logger, at adapt time for the Caddyfile and when the config is
// loaded for JSON, always in the same words, so an operator can grep the log for
// "deprecated" and find every line to change.
package deprecated

import (
	"bytes"
	"encoding/json"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
)

// logger overrides caddy.Log().Named("dcr") when set (see SetLogger).
var logger atomic.Pointer[zap.Logger]

func log() *zap.Logger {
	if l := logger.Load(); l != nil {
		return l
	}
	return caddy.Log().Named("dcr")
}

// SetLogger sends the warnings to l until the returned function is called; tests use it to
// observe them.
func SetLogger(l *zap.Logger) (restore func()) {
	prev := logger.Swap(l)
	return func() { logger.Store(prev) }
}

// Caddyfile warns that the Caddyfile option (or value) old, at the dispenser's position, is
// the previous release's spelling of replacement.
func Caddyfile(d *caddyfile.Dispenser, old, replacement string) {
	log().Warn("deprecated Caddyfile option "+old+": use "+replacement+" (the old name works for this release only)",
		zap.String("deprecated", old), zap.String("use", replacement),
		zap.String("file", d.File()), zap.Int("line", d.Line()))
}

// JSON warns that the JSON field old of module is the previous release's name of replacement.
func JSON(module, old, replacement string) {
	log().Warn("deprecated JSON field "+old+" of "+module+": use "+replacement+" (the old name works for this release only)",
		zap.String("module", module), zap.String("deprecated", old), zap.String("use", replacement))
}

// RenameKey renames the key old of the JSON object raw to replacement, for an inline module key
// that changed its name; it reports whether old was there. Both keys at once are an error.
func RenameKey(raw json.RawMessage, old, replacement string) (json.RawMessage, bool, error) {
	if len(raw) == 0 || !bytes.Contains(raw, []byte(`"`+old+`"`)) {
		return raw, false, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return raw, false, nil // not an object: left for the module loader to report
	}
	v, ok := obj[old]
	if !ok {
		return raw, false, nil
	}
	if _, both := obj[replacement]; both {
		return raw, true, &BothError{Old: old, New: replacement}
	}
	delete(obj, old)
	obj[replacement] = v
	out, err := json.Marshal(obj)
	return out, true, err
}

// BothError is a config that sets an option under its old and its new name.
type BothError struct{ Old, New string }

func (e *BothError) Error() string {
	return e.Old + " (deprecated) and " + e.New + " are both set; keep " + e.New
}
