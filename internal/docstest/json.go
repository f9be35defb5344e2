package docstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// moduleKinds are the inline keys that make a JSON object a module's config, and the
// namespace the key's value names a module in.
var moduleKinds = []struct{ key, namespace string }{
	{"handler", "http.handlers"},
	{"protection", "dcr.protections"},
	{"storage", "dcr.storage"},
	{"registrar", "dcr.registrars"},
}

// dialsOnProvision are modules whose Provision contacts the addresses in their config;
// configs holding one are loaded strictly but not provisioned, since documentation
// addresses are nobody's machine.
var dialsOnProvision = map[string]bool{"dcr.storage.redis": true}

// CheckJSON parses a ```json block. An object that is a Caddy config (apps) or a module's
// config (an inline key such as "handler": "dcr") is decoded strictly into the module and
// its guest modules, recursively, so a misspelt or removed field fails; an http handler is
// then provisioned in a Caddy config of its own (sandbox paths filled in, storage in
// storageDir) unless it holds a module that would dial out. Any other JSON (a log line, a
// claim set) only has to parse.
func CheckJSON(b Block, sandboxDir, storageDir string) error {
	body := FillSandbox(b.Body, sandboxDir)
	var v any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%s: the json block does not parse: %v", b.Where(), err)
	}
	if dec.More() {
		return fmt.Errorf("%s: the json block holds more than one JSON value", b.Where())
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if _, ok := obj["apps"]; ok {
		var cfg caddy.Config
		if err := caddy.StrictUnmarshalJSON([]byte(body), &cfg); err != nil {
			return fmt.Errorf("%s: not a Caddy config: %v", b.Where(), err)
		}
		return nil
	}
	id := moduleID(obj)
	if id == "" {
		return nil
	}
	used := map[string]bool{}
	if err := LoadStrict(id, []byte(body), used); err != nil {
		return fmt.Errorf("%s: %v", b.Where(), err)
	}
	if !strings.HasPrefix(id, "http.handlers.") {
		return nil
	}
	for m := range used {
		if dialsOnProvision[m] {
			return nil
		}
	}
	if err := provisionHandler([]byte(body), storageDir); err != nil {
		return fmt.Errorf("%s: provisioning the %s config: %v", b.Where(), id, err)
	}
	return nil
}

func moduleID(obj map[string]any) string {
	for _, k := range moduleKinds {
		if name, ok := obj[k.key].(string); ok {
			return k.namespace + "." + name
		}
	}
	return ""
}

// LoadStrict decodes raw into the module id with unknown fields refused, then does the same
// for each guest module it names (fields tagged `caddy:"namespace=… inline_key=…"`). The ids
// of every module met are added to used.
func LoadStrict(id string, raw []byte, used map[string]bool) error {
	return loadStrict(id, inlineKeyOf(id), raw, used)
}

func loadStrict(id, inlineKey string, raw []byte, used map[string]bool) error {
	info, err := caddy.GetModule(id)
	if err != nil {
		return fmt.Errorf("module %s: %v", id, err)
	}
	used[id] = true
	// The inline key names the module; it is not a field of the module itself.
	raw, err = withoutKey(raw, inlineKey)
	if err != nil {
		return fmt.Errorf("module %s: %v", id, err)
	}
	mod := info.New()
	if err := caddy.StrictUnmarshalJSON(raw, mod); err != nil {
		return fmt.Errorf("module %s: %v", id, err)
	}
	val := reflect.ValueOf(mod)
	for val.Kind() == reflect.Pointer {
		val = val.Elem()
	}
	if val.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < val.NumField(); i++ {
		ns, key := guestTag(val.Type().Field(i).Tag.Get("caddy"))
		if ns == "" || key == "" {
			continue
		}
		var raws []json.RawMessage
		switch f := val.Field(i).Interface().(type) {
		case json.RawMessage:
			if len(f) > 0 {
				raws = append(raws, f)
			}
		case []json.RawMessage:
			raws = f
		default:
			continue
		}
		for _, r := range raws {
			var head map[string]json.RawMessage
			if err := json.Unmarshal(r, &head); err != nil {
				return fmt.Errorf("module %s: a %s module is not an object: %v", id, ns, err)
			}
			var name string
			if err := json.Unmarshal(head[key], &name); err != nil || name == "" {
				return fmt.Errorf("module %s: a %s module has no %q", id, ns, key)
			}
			if err := loadStrict(ns+"."+name, key, r, used); err != nil {
				return err
			}
		}
	}
	return nil
}

func inlineKeyOf(id string) string {
	for _, k := range moduleKinds {
		if strings.HasPrefix(id, k.namespace+".") {
			return k.key
		}
	}
	return ""
}

func guestTag(tag string) (namespace, inlineKey string) {
	for _, part := range strings.Fields(tag) {
		if v, ok := strings.CutPrefix(part, "namespace="); ok {
			namespace = v
		}
		if v, ok := strings.CutPrefix(part, "inline_key="); ok {
			inlineKey = v
		}
	}
	return namespace, inlineKey
}

func withoutKey(raw []byte, key string) ([]byte, error) {
	if key == "" {
		return raw, nil
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	delete(obj, key)
	return json.Marshal(obj)
}

// provisionHandler loads the handler into an HTTP server of a Caddy config and validates it:
// every module is provisioned (files read, policies compiled) and cleaned up; nothing listens.
func provisionHandler(handler []byte, storageDir string) error {
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true},
		"storage": map[string]any{"module": "file_system", "root": storageDir},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"docs": map[string]any{
			"listen":          []string{"127.0.0.1:0"},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": []json.RawMessage{handler}}},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	var c caddy.Config
	if err := caddy.StrictUnmarshalJSON(raw, &c); err != nil {
		return err
	}
	return caddy.Validate(&c)
}
