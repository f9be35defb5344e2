package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/redistest"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
	redisstore "github.com/dcrgate/dcrgate/storage/redis"
)

// provision loads dcr.storage.redis from JSON as Caddy does; the returned cancel unloads it.
func provision(t *testing.T, config string) (*redisstore.Store, error) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	mod, err := ctx.LoadModuleByID("dcr.storage.redis", json.RawMessage(config))
	if err != nil {
		return nil, err
	}
	return mod.(*redisstore.Store), nil
}

// Caddy must start while Redis is down: the store provisions, its calls fail (503), and it
// works as soon as Redis is there, without a reload.
func TestProvisionWhileRedisIsDown(t *testing.T) {
	port := gatewaytest.FreePort(t)
	s, err := provision(t, fmt.Sprintf(`{"address":"127.0.0.1:%d","dial_timeout":"200ms"}`, port))
	if err != nil {
		t.Fatalf("Provision with Redis down: %v", err)
	}
	_, err = s.Get(t.Context(), "client-1")
	if err == nil || errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("Get with Redis down = %v, want a store-unavailable error", err)
	}
	srv := redistest.New(t, port)
	srv.Start()
	waitFor(t, "the provisioned store to reach Redis", func() (bool, string) {
		_, err := s.Get(t.Context(), "client-1")
		return errors.Is(err, dcr.ErrNotFound), fmt.Sprint(err)
	})
}

// Credentials never show in errors, whether the password is wrong or the server is down.
func TestSecretsStayOutOfErrors(t *testing.T) {
	srv := startServer(t, "--requirepass", "the-right-password-7d1c")
	const secret = "wrong-password-4f9a2b"
	t.Setenv("DCRGATE_TEST_REDIS_PASSWORD", secret)
	s, err := provision(t, fmt.Sprintf(`{"address":%q,"username":"default","password":"{env.DCRGATE_TEST_REDIS_PASSWORD}"}`, srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(t.Context(), "client-1")
	if err == nil {
		t.Fatal("Get with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("error %q does not say the password was refused", err)
	}
}

func TestProvisionRejectsBadConfigs(t *testing.T) {
	for name, cfg := range map[string]string{
		"two deployments":       `{"address":"a:1","cluster":{"addresses":["b:1"]}}`,
		"sentinel without name": `{"sentinel":{"addresses":["a:26379"]}}`,
		"cluster with db":       `{"cluster":{"addresses":["a:1"]},"db":3}`,
		"empty env address":     `{"address":"{env.DCRGATE_TEST_UNSET_VARIABLE}"}`,
		"prefix with a brace":   `{"prefix":"a{b"}`,
		"negative replicas":     `{"min_replicas_ack":-1}`,
		"missing CA file":       `{"tls":{"ca":"/nonexistent/ca.pem"}}`,
		"cert without key":      `{"tls":{"cert":"/nonexistent/cert.pem"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := provision(t, cfg); err == nil {
				t.Errorf("Provision(%s) succeeded", cfg)
			}
		})
	}
}

func trustFiles(files ...string) tlsclient.Config {
	var c tlsclient.Config
	c.CARaw = tlsclient.TrustPoolFiles(files...)
	return c
}

// TestUnmarshalCaddyfileTLS: reverse_proxy's tls_* names, and the deprecated tls block giving
// the same JSON.
func TestUnmarshalCaddyfileTLS(t *testing.T) {
	parse := func(in string) string {
		t.Helper()
		var s redisstore.Store
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		b, _ := json.Marshal(s.TLS)
		return string(b)
	}
	modern := parse("redis r:6380 {\n tls_trust_pool file /ca.pem\n tls_client_auth /c.pem /k.pem\n tls_server_name redis.internal\n}")
	legacy := parse("redis r:6380 {\n tls {\n ca /ca.pem\n cert /c.pem\n key /k.pem\n server_name redis.internal\n }\n}")
	want := `{"ca":{"pem_files":["/ca.pem"],"provider":"file"},"client_certificate_file":"/c.pem","client_certificate_key_file":"/k.pem","server_name":"redis.internal"}`
	if modern != want || legacy != want {
		t.Errorf("tls_* gave %s\ntls {} gave %s\nwant %s", modern, legacy, want)
	}
	if got := parse("redis r:6380 {\n tls\n}"); got != "{}" {
		t.Errorf("bare tls gave %s, want {} (TLS on, system roots)", got)
	}
	if got := parse("redis r:6380"); got != "null" {
		t.Errorf("no tls gave %s, want null", got)
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`redis 10.0.0.5:6380 {
		username dcr
		password {env.REDIS_PASSWORD}
		db 3
		prefix bank-a
		tls {
			ca /ca.pem
		}
		read_timeout 750ms
		min_replicas_ack 2
	}`)
	var s redisstore.Store
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := redisstore.Store{Address: "10.0.0.5:6380", Username: "dcr", Password: "{env.REDIS_PASSWORD}", DB: 3,
		Prefix: "bank-a", TLS: &redisstore.TLS{Config: trustFiles("/ca.pem")}, ReadTimeout: caddy.Duration(750 * time.Millisecond), MinReplicasAck: 2}
	got, _ := json.Marshal(&s)
	wantJSON, _ := json.Marshal(&want)
	if string(got) != string(wantJSON) {
		t.Errorf("got  %s\nwant %s", got, wantJSON)
	}

	for input, wantErr := range map[string]string{
		"redis {\nsentinel onlyname\n}":           "sentinel needs",
		"redis {\ncluster\n}":                     "cluster needs",
		"redis a:1 b:2":                           "wrong argument count",
		"redis {\ndb -1\n}":                       "non-negative",
		"redis {\nread_timeout soon\n}":           "positive duration",
		"redis {\ntls {\ncert /c.pem\n}\n}":       "go together",
		"redis {\nbogus 1\n}":                     "unrecognized subdirective",
		"redis {\ncluster a:1\ndb 2\n}":           "db must be 0",
		"redis {\nsentinel_password x\n}":         "need a sentinel line",
		"redis {\nprefix \"a b\"\n}":              "white space",
		"redis {\nsentinel m s:1\naddress a:1\n}": "exclude each other",
	} {
		var s redisstore.Store
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one containing %q", input, err, wantErr)
		}
	}
}

// TestUnmarshalCaddyfileLongForms: the sentinel and cluster blocks, named as the JSON, give
// what their one-line shorthands give.
func TestUnmarshalCaddyfileLongForms(t *testing.T) {
	parse := func(in string) string {
		t.Helper()
		var s redisstore.Store
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		b, _ := json.Marshal(&s)
		return string(b)
	}
	for short, long := range map[string]string{
		"redis {\nsentinel m s:1 s:2\nsentinel_username u\nsentinel_password p\n}": "redis {\nsentinel {\nmaster_name m\naddresses s:1\naddresses s:2\nusername u\npassword p\n}\n}",
		"redis {\ncluster a:1 a:2\n}": "redis {\ncluster {\naddresses a:1 a:2\n}\n}",
	} {
		if s, l := parse(short), parse(long); s != l {
			t.Errorf("shorthand %s\nlong form %s", s, l)
		}
	}
	if got := parse("redis {\nsentinel {\nmaster_name m\naddresses s:1\n}\n}"); !strings.Contains(got, `"master_name":"m"`) || !strings.Contains(got, `"addresses":["s:1"]`) {
		t.Errorf("sentinel block: %s", got)
	}
	for input, wantErr := range map[string]string{
		"redis {\nsentinel {\nmaster_name m\n}\n}": "sentinel needs",
		"redis {\nsentinel {\nmaster m\n}\n}":      `unrecognized option "master"`,
		"redis {\ncluster {\nnodes a:1\n}\n}":      `unrecognized option "nodes"`,
		"redis {\ncluster {\n}\n}":                 "cluster needs",
	} {
		var s redisstore.Store
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one containing %q", input, err, wantErr)
		}
	}
}
