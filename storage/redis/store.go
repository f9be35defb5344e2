// Package redis is dcr.storage.redis, the registration store for several gateway nodes: they
// share one registry, one replay cache and one record of consumed tokens in Redis (standalone,
// Sentinel or Cluster), through github.com/redis/go-redis/v9.
//
// Key layout, under Prefix (default "dcr"); every variable part is a SHA-256 in hex, so that
// ids from requests and SSAs can neither collide nor inflate key names:
//
//	{<prefix>}:reg:<sha256(client_id)>         hash: version, software_id, org_id, record (JSON),
//	                                           write_id, deleted_at (set on a tombstone)
//	{<prefix>}:software:<sha256(software_id)>  set of the live client_ids of a software_id
//	{<prefix>}:org:<sha256(org_id)>            set of the live client_ids of an org_id
//	{<prefix>}:once:<sha256(key)>              one-time key (replay cache, consumed tokens), with a TTL
//	{<prefix>}:hist:<kind>:<sha256(id)>        list: a bounded history (see history.go)
//
// Every key shares the hash tag {<prefix>}, so that a record, the index entries it moves, its
// one-time keys and its history event sit in one Cluster slot and change in one Lua script
// (all or nothing): Redis Cluster cannot make a write to several slots atomic. Releases
// before this one kept one-time keys untagged (<prefix>:once:...); those are still honoured
// until they expire (legacyOnceKey) and never written.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

func init() {
	caddy.RegisterModule(Store{})
}

const (
	defaultPrefix            = "dcr"
	defaultReplicaAckTimeout = time.Second
)

// Store is a dcr.Store on Redis. Exactly one of Address, Sentinel and Cluster selects the
// deployment; with none, Address is localhost:6379. String values accept Caddy placeholders
// such as {env.REDIS_PASSWORD}, replaced at provisioning.
type Store struct {
	// Address is the host:port of a standalone Redis server.
	Address string `json:"address,omitempty"`
	// Sentinel selects a master through Redis Sentinel.
	Sentinel *Sentinel `json:"sentinel,omitempty"`
	// Cluster connects to a Redis Cluster through some of its nodes.
	Cluster *Cluster `json:"cluster,omitempty"`

	// Username and Password authenticate (Redis 6 ACL; Password alone for requirepass).
	// Neither is ever logged nor put in an error.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// DB is the database index (standalone and Sentinel only; Cluster has only 0).
	DB int `json:"db,omitempty"`
	// TLS, when set, connects over TLS.
	TLS *TLS `json:"tls,omitempty"`

	// Prefix starts every key, so that several registries can share one Redis. Default "dcr".
	Prefix string `json:"prefix,omitempty"`

	// DialTimeout, ReadTimeout and WriteTimeout bound each connection attempt and command
	// (go-redis defaults: 5s, 3s, 3s). A command that times out fails its request with 503.
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// PoolSize is the number of connections per node (go-redis default: 10 per CPU).
	PoolSize int `json:"pool_size,omitempty"`

	// MinReplicasAck, when positive, makes every registration write wait (Redis WAIT) until
	// that many replicas have it; a write they do not acknowledge within ReplicaAckTimeout
	// fails with 503 (and a registration that was being created is removed again), so that
	// an acknowledged registration survives the loss of the master.
	MinReplicasAck int `json:"min_replicas_ack,omitempty"`
	// ReplicaAckTimeout bounds that wait. Default 1s.
	ReplicaAckTimeout caddy.Duration `json:"replica_ack_timeout,omitempty"`

	client    goredis.UniversalClient
	clientKey string // in the client pool; empty when the client was given to New
	logger    *zap.Logger
}

// Sentinel locates the master of a Sentinel-monitored group.
type Sentinel struct {
	// MasterName is the name the sentinels monitor the master under.
	MasterName string `json:"master_name,omitempty"`
	// Addresses are host:port of sentinels.
	Addresses []string `json:"addresses,omitempty"`
	// Username and Password authenticate to the sentinels, when they require it.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Cluster lists seed nodes of a Redis Cluster; the rest are discovered.
type Cluster struct {
	Addresses []string `json:"addresses,omitempty"`
}

// TLS connects to Redis over TLS with reverse_proxy's TLS client options (JSON: ca (a trust
// pool module), client_certificate_file, client_certificate_key_file, server_name, ...;
// Caddyfile: tls_trust_pool, tls_client_auth, tls_server_name, ...). Without a trust pool the
// system roots are trusted.
type TLS struct {
	tlsclient.Config
	// Cert and Key are PEM files of a client certificate.
	//
	// Deprecated: use client_certificate_file and client_certificate_key_file. Likewise a
	// string ca (a PEM file name) is the previous release's form of a file trust pool.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
}

// resolve folds the previous release's fields into the TLS client configuration, warning
// once per deprecated field.
func (t *TLS) resolve(log *zap.Logger) (*tlsclient.Config, error) {
	out := t.Config
	var legacyCA string
	if len(out.CARaw) > 0 && out.CARaw[0] == '"' {
		if err := json.Unmarshal(out.CARaw, &legacyCA); err != nil {
			return nil, fmt.Errorf("redis store: tls ca: %w", err)
		}
		out.CARaw = nil
	}
	if legacyCA != "" {
		log.Warn("redis store: tls.ca as a file name is deprecated; use tls.ca {\"provider\": \"file\", \"pem_files\": [...]} (Caddyfile: tls_trust_pool file <pem>)")
		if err := out.AddTrustedFiles(legacyCA); err != nil {
			return nil, fmt.Errorf("redis store: tls ca: %w", err)
		}
	}
	if t.Cert != "" || t.Key != "" {
		log.Warn("redis store: tls.cert and tls.key are deprecated; use tls.client_certificate_file and tls.client_certificate_key_file (Caddyfile: tls_client_auth <cert> <key>)")
		if (t.Cert == "") != (t.Key == "") {
			return nil, errors.New("redis store: tls cert and key go together")
		}
		if out.ClientCertificateFile != "" {
			return nil, errors.New("redis store: tls cert and client_certificate_file are both set")
		}
		out.SetClientCertificate(t.Cert, t.Key)
	}
	return &out, nil
}

// CaddyModule returns the Caddy module information.
func (Store) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.storage.redis",
		New: func() caddy.Module { return new(Store) },
	}
}

// New returns a Store on a client the caller owns (tests, embedding without a Caddy config).
// An empty prefix means "dcr". It panics on an invalid prefix or a negative replica count,
// like regexp.MustCompile, since those are constants of the caller.
func New(client goredis.UniversalClient, prefix string, minReplicasAck int) *Store {
	s := &Store{Prefix: prefix, MinReplicasAck: minReplicasAck}
	if err := s.setDefaults(); err != nil {
		panic(err)
	}
	s.client, s.logger = client, zap.NewNop()
	return s
}

// Provision replaces placeholders, takes a client from the pool of clients shared across
// configs (a `caddy reload` keeps connections) and checks in the background that Redis
// answers. It does not fail when Redis is down: the gateway starts, its DCR requests get 503
// until Redis is up, and go-redis connects as soon as it is.
func (s *Store) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if err := s.replacePlaceholders(); err != nil {
		return err
	}
	if err := s.setDefaults(); err != nil {
		return err
	}
	conn, err := s.connection()
	if err != nil {
		return err
	}
	client, key, err := acquireClient(ctx, conn)
	if err != nil {
		return err
	}
	s.client, s.clientKey = client, key
	s.logger.Info("registration store provisioned", conn.logFields(s.Prefix, s.MinReplicasAck)...)
	go s.checkReachable(ctx, time.Duration(conn.DialTimeout)+time.Duration(conn.ReadTimeout))
	return nil
}

// checkReachable pings once, to warn early about a Redis that is not there; requests find out
// on their own either way.
func (s *Store) checkReachable(ctx context.Context, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Warn("redis is not reachable; DCR requests get 503 until it is", zap.Error(err))
	}
}

// Cleanup gives the client back to the pool, which closes it when no config uses it.
func (s *Store) Cleanup() error {
	if s.clientKey == "" {
		return nil
	}
	_, err := clients.Delete(s.clientKey)
	s.clientKey = ""
	return err
}

func (s *Store) setDefaults() error {
	if s.Prefix == "" {
		s.Prefix = defaultPrefix
	}
	if err := validatePrefix(s.Prefix); err != nil {
		return err
	}
	if s.MinReplicasAck < 0 {
		return fmt.Errorf("redis store: min_replicas_ack %d is negative", s.MinReplicasAck)
	}
	if s.ReplicaAckTimeout < 0 {
		return fmt.Errorf("redis store: replica_ack_timeout %v is negative", time.Duration(s.ReplicaAckTimeout))
	}
	if s.ReplicaAckTimeout == 0 {
		s.ReplicaAckTimeout = caddy.Duration(defaultReplicaAckTimeout)
	}
	return nil
}

// validatePrefix refuses braces (the prefix becomes a hash tag) and spaces, which
// redis-cli and operators' scripts would trip over.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("redis store: prefix is empty")
	}
	if strings.ContainsAny(prefix, "{} \t\r\n") {
		return fmt.Errorf("redis store: prefix %q must not contain braces or white space", prefix)
	}
	return nil
}

// storeErr wraps a Redis failure so that the handler answers 503. go-redis errors name the
// command and the address, never the credentials.
func storeErr(op string, err error) error {
	return fmt.Errorf("redis store: %s: %w", op, err)
}

// Interface guards
var (
	_ dcr.Store          = (*Store)(nil)
	_ caddy.Module       = (*Store)(nil)
	_ caddy.Provisioner  = (*Store)(nil)
	_ caddy.CleanerUpper = (*Store)(nil)
)
