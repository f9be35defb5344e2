package redis

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/internal/placeholder"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

// clients holds one go-redis client per distinct connection config, shared by every Store
// of the process that uses that config, so that `caddy reload` reuses connections and the
// last Store to go closes them.
var clients = caddy.NewUsagePool()

// connection is what identifies a client: everything but the store's own settings (prefix,
// replicas), after placeholders are replaced.
type connection struct {
	Mode         string            `json:"mode"` // standalone, sentinel or cluster
	Addresses    []string          `json:"addresses"`
	MasterName   string            `json:"master_name,omitempty"`
	Username     string            `json:"username,omitempty"`
	Password     string            `json:"password,omitempty"`
	SentinelUser string            `json:"sentinel_username,omitempty"`
	SentinelPass string            `json:"sentinel_password,omitempty"`
	DB           int               `json:"db,omitempty"`
	TLS          *tlsclient.Config `json:"tls,omitempty"`
	// TLSFiles is a digest of the files the TLS configuration reads, so that a reload after a
	// certificate rotation makes a new client.
	TLSFiles     string         `json:"tls_files,omitempty"`
	DialTimeout  caddy.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  caddy.Duration `json:"read_timeout,omitempty"`
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	PoolSize     int            `json:"pool_size,omitempty"`
}

// replacePlaceholders resolves {env.*} and other global placeholders in every string option
// (internal/placeholder). An address that was set but resolves to nothing (an unset
// variable) is an error, not a silent fallback to localhost.
func (s *Store) replacePlaceholders() error {
	var err error
	r := func(v *string) { *v = placeholder.Resolve(*v) }
	addr := func(v *string) {
		a, aerr := placeholder.NonEmpty("redis store: address", *v)
		if aerr != nil && err == nil {
			err = aerr
		}
		*v = a
	}
	r(&s.Username)
	r(&s.Password)
	r(&s.Prefix)
	addr(&s.Address)
	if s.Sentinel != nil {
		r(&s.Sentinel.MasterName)
		r(&s.Sentinel.Username)
		r(&s.Sentinel.Password)
		for i := range s.Sentinel.Addresses {
			addr(&s.Sentinel.Addresses[i])
		}
	}
	if s.Cluster != nil {
		for i := range s.Cluster.Addresses {
			addr(&s.Cluster.Addresses[i])
		}
	}
	if s.TLS != nil {
		r(&s.TLS.Cert)
		r(&s.TLS.Key)
		r(&s.TLS.ClientCertificateFile)
		r(&s.TLS.ClientCertificateKeyFile)
		r(&s.TLS.ServerName)
	}
	return err
}

// connection checks the deployment options and returns the client's identity.
func (s *Store) connection() (connection, error) {
	c := connection{
		Username: s.Username, Password: s.Password, DB: s.DB,
		DialTimeout: s.DialTimeout, ReadTimeout: s.ReadTimeout, WriteTimeout: s.WriteTimeout,
		PoolSize: s.PoolSize,
	}
	if s.TLS != nil {
		t, err := s.TLS.resolve(s.logger)
		if err != nil {
			return c, err
		}
		if c.TLSFiles, err = t.Digest(); err != nil {
			return c, fmt.Errorf("redis store: %w", err)
		}
		c.TLS = t
	}
	modes := 0
	if s.Address != "" {
		modes++
		c.Mode, c.Addresses = "standalone", []string{s.Address}
	}
	if s.Sentinel != nil {
		modes++
		if s.Sentinel.MasterName == "" || len(s.Sentinel.Addresses) == 0 {
			return c, errors.New("redis store: sentinel needs a master name and at least one sentinel address")
		}
		c.Mode, c.Addresses, c.MasterName = "sentinel", s.Sentinel.Addresses, s.Sentinel.MasterName
		c.SentinelUser, c.SentinelPass = s.Sentinel.Username, s.Sentinel.Password
	}
	if s.Cluster != nil {
		modes++
		if len(s.Cluster.Addresses) == 0 {
			return c, errors.New("redis store: cluster needs at least one node address")
		}
		if s.DB != 0 {
			return c, errors.New("redis store: db must be 0 with cluster; Redis Cluster has one database")
		}
		c.Mode, c.Addresses = "cluster", s.Cluster.Addresses
	}
	switch {
	case modes > 1:
		return c, errors.New("redis store: address, sentinel and cluster exclude each other")
	case modes == 0:
		c.Mode, c.Addresses = "standalone", []string{"localhost:6379"}
	}
	for _, a := range c.Addresses {
		if a == "" {
			return c, errors.New("redis store: an address is empty (an unset environment variable?)")
		}
	}
	if s.DB < 0 {
		return c, fmt.Errorf("redis store: db %d is negative", s.DB)
	}
	if s.PoolSize < 0 || s.DialTimeout < 0 || s.ReadTimeout < 0 || s.WriteTimeout < 0 {
		return c, errors.New("redis store: pool_size and timeouts must not be negative")
	}
	return c, nil
}

// key identifies the client in the pool. It is a digest, so the credentials in c are not
// kept as a map key of a long-lived pool.
func (c connection) key() string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// logFields describe the connection without credentials.
func (c connection) logFields(prefix string, minReplicasAck int) []zap.Field {
	return []zap.Field{
		zap.String("mode", c.Mode),
		zap.Strings("addresses", c.Addresses),
		zap.String("master_name", c.MasterName),
		zap.Int("db", c.DB),
		zap.String("username", c.Username),
		zap.Bool("password_set", c.Password != ""),
		zap.Bool("tls", c.TLS != nil),
		zap.String("prefix", prefix),
		zap.Int("min_replicas_ack", minReplicasAck),
	}
}

// acquireClient returns the pooled client of c, creating it on first use.
func acquireClient(ctx caddy.Context, c connection) (goredis.UniversalClient, string, error) {
	key := c.key()
	v, _, err := clients.LoadOrNew(key, func() (caddy.Destructor, error) {
		opts, err := c.options(ctx)
		if err != nil {
			return nil, err
		}
		return pooledClient{goredis.NewUniversalClient(opts)}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return v.(pooledClient).UniversalClient, key, nil
}

type pooledClient struct{ goredis.UniversalClient }

// Destruct closes the client when the last Store using it is cleaned up.
func (p pooledClient) Destruct() error { return p.Close() }

func (c connection) options(ctx caddy.Context) (*goredis.UniversalOptions, error) {
	opts := &goredis.UniversalOptions{
		Addrs:            c.Addresses,
		MasterName:       c.MasterName,
		IsClusterMode:    c.Mode == "cluster",
		Username:         c.Username,
		Password:         c.Password,
		SentinelUsername: c.SentinelUser,
		SentinelPassword: c.SentinelPass,
		DB:               c.DB,
		DialTimeout:      time.Duration(c.DialTimeout),
		ReadTimeout:      time.Duration(c.ReadTimeout),
		WriteTimeout:     time.Duration(c.WriteTimeout),
		PoolSize:         c.PoolSize,
		// A request's deadline bounds its Redis calls too, so a slow Redis turns into a 503
		// before the client gives up on the gateway.
		ContextTimeoutEnabled: true,
		ClientName:            "dcrgate",
	}
	if c.TLS != nil {
		cfg, err := c.TLS.Make(ctx)
		if err != nil {
			return nil, fmt.Errorf("redis store: tls: %w", err)
		}
		if cfg.InsecureSkipVerify {
			ctx.Logger().Warn("redis store: tls_insecure_skip_verify is on: the Redis servers are not authenticated")
		}
		opts.TLSConfig = cfg
	}
	return opts, nil
}
