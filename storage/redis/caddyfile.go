package redis

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/deprecated"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. The dispenser is positioned at
// the module name (the enclosing `storage` directive of `dcr` has been consumed):
//
//	redis [<host:port>] {                       # the argument is address's shorthand
//	    address  <host:port>                    # standalone (the default: localhost:6379)
//	    sentinel <master_name> <host:port>...   # or: the master of a Sentinel group; long form:
//	    sentinel {                              #   (JSON sentinel.*)
//	        master_name <name>
//	        addresses <host:port>...
//	        username <username>                 # when the sentinels require auth
//	        password <password>
//	    }
//	    cluster  <host:port>...                 # or: seed nodes of a Cluster (long form: cluster { addresses <host:port>... })
//	    sentinel_username <username>            # shorthands of sentinel { username, password }
//	    sentinel_password <password>
//	    username <username>                     # ACL user
//	    password <password>                     # e.g. {env.REDIS_PASSWORD}; never logged
//	    db       <index>                        # not with cluster
//	    tls                                     # connect over TLS (implied by any tls_* option)
//	    tls_trust_pool file <pem>...            # reverse_proxy's TLS options; default the system roots
//	    tls_client_auth <cert file> <key file>  # client certificate
//	    tls_server_name <name>
//	    tls_timeout <duration>
//	    prefix        <prefix>                  # default dcr
//	    dial_timeout  <duration>
//	    read_timeout  <duration>
//	    write_timeout <duration>
//	    pool_size     <connections per node>
//	    min_replicas_ack    <n>                 # WAIT for n replicas on each registration write
//	    replica_ack_timeout <duration>          # default 1s
//	}
//
// Every option is named as its JSON field (tls_* as reverse_proxy's for the tls object); the
// one-line sentinel and cluster forms and sentinel_username/sentinel_password are shorthands of
// the blocks. Every value may be a placeholder such as {env.REDIS_PASSWORD}, replaced at
// provisioning.
func (s *Store) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		s.Address = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		option := d.Val()
		switch option {
		case "address":
			if err := oneArg(d, &s.Address); err != nil {
				return err
			}
		case "sentinel":
			args := d.RemainingArgs()
			if s.Sentinel == nil {
				s.Sentinel = new(Sentinel)
			}
			if len(args) > 0 {
				if len(args) < 2 {
					return d.Err("sentinel needs a master name and at least one sentinel address")
				}
				s.Sentinel.MasterName, s.Sentinel.Addresses = args[0], args[1:]
			}
			for d.NextBlock(1) {
				sub := d.Val()
				switch sub {
				case "master_name", "username", "password":
					target := map[string]*string{"master_name": &s.Sentinel.MasterName, "username": &s.Sentinel.Username, "password": &s.Sentinel.Password}[sub]
					if err := oneArg(d, target); err != nil {
						return err
					}
				case "addresses":
					s.Sentinel.Addresses = append(s.Sentinel.Addresses, d.RemainingArgs()...)
					if len(s.Sentinel.Addresses) == 0 {
						return d.ArgErr()
					}
				default:
					return d.Errf("sentinel: unrecognized option %q", sub)
				}
			}
			if len(args) == 0 && (s.Sentinel.MasterName == "" || len(s.Sentinel.Addresses) == 0) {
				return d.Err("sentinel needs a master name and at least one sentinel address (master_name, addresses)")
			}
		case "sentinel_username", "sentinel_password":
			if s.Sentinel == nil {
				s.Sentinel = new(Sentinel)
			}
			target := &s.Sentinel.Username
			if option == "sentinel_password" {
				target = &s.Sentinel.Password
			}
			if err := oneArg(d, target); err != nil {
				return err
			}
		case "cluster":
			args := d.RemainingArgs()
			for d.NextBlock(1) {
				if d.Val() != "addresses" {
					return d.Errf("cluster: unrecognized option %q", d.Val())
				}
				more := d.RemainingArgs()
				if len(more) == 0 {
					return d.ArgErr()
				}
				args = append(args, more...)
			}
			if len(args) == 0 {
				return d.Err("cluster needs at least one node address")
			}
			s.Cluster = &Cluster{Addresses: args}
		case "username":
			if err := oneArg(d, &s.Username); err != nil {
				return err
			}
		case "password":
			if err := oneArg(d, &s.Password); err != nil {
				return err
			}
		case "prefix":
			if err := oneArg(d, &s.Prefix); err != nil {
				return err
			}
			if err := validatePrefix(s.Prefix); err != nil {
				return d.WrapErr(err)
			}
		case "db", "pool_size", "min_replicas_ack":
			var raw string
			if err := oneArg(d, &raw); err != nil {
				return err
			}
			n, err := strconv.Atoi(raw)
			if err != nil || n < 0 {
				return d.Errf("%s must be a non-negative integer, got %q", option, raw)
			}
			switch option {
			case "db":
				s.DB = n
			case "pool_size":
				s.PoolSize = n
			default:
				s.MinReplicasAck = n
			}
		case "dial_timeout", "read_timeout", "write_timeout", "replica_ack_timeout":
			var raw string
			if err := oneArg(d, &raw); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(raw)
			if err != nil || dur <= 0 {
				return d.Errf("%s must be a positive duration, got %q", option, raw)
			}
			*map[string]*caddy.Duration{
				"dial_timeout":        &s.DialTimeout,
				"read_timeout":        &s.ReadTimeout,
				"write_timeout":       &s.WriteTimeout,
				"replica_ack_timeout": &s.ReplicaAckTimeout,
			}[option] = caddy.Duration(dur)
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			if s.TLS == nil {
				s.TLS = new(TLS)
			}
			for warned := false; d.NextBlock(1); warned = true {
				if !warned {
					deprecated.Caddyfile(d, "redis tls { ca cert key server_name }", "tls_trust_pool file <pem>, tls_client_auth <cert> <key>, tls_server_name <name>")
				}
				var target *string
				switch d.Val() {
				case "ca":
					var ca string
					if err := oneArg(d, &ca); err != nil {
						return err
					}
					if err := s.TLS.AddTrustedFiles(ca); err != nil {
						return d.Err(err.Error())
					}
					continue
				case "cert":
					target = &s.TLS.ClientCertificateFile
				case "key":
					target = &s.TLS.ClientCertificateKeyFile
				case "server_name":
					target = &s.TLS.ServerName
				default:
					return d.Errf("unrecognized tls option %q", d.Val())
				}
				if err := oneArg(d, target); err != nil {
					return err
				}
			}
			if (s.TLS.ClientCertificateFile == "") != (s.TLS.ClientCertificateKeyFile == "") {
				return d.Err("tls cert and key go together")
			}
		default:
			var t *tlsclient.Config
			if s.TLS != nil {
				t = &s.TLS.Config
			}
			ok, err := tlsclient.UnmarshalCaddyfileOption(d, &t)
			if !ok {
				return d.Errf("unrecognized subdirective %q", option)
			}
			if err != nil {
				return err
			}
			if s.TLS == nil {
				s.TLS = &TLS{Config: *t}
			}
		}
	}
	modes := 0
	for _, set := range []bool{s.Address != "", s.Sentinel != nil && s.Sentinel.MasterName != "", s.Cluster != nil} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return d.Err("address, sentinel and cluster exclude each other")
	}
	if s.Sentinel != nil && s.Sentinel.MasterName == "" {
		return d.Err("sentinel_username and sentinel_password need a sentinel line")
	}
	if s.Cluster != nil && s.DB != 0 {
		return d.Err("db must be 0 with cluster; Redis Cluster has one database")
	}
	return nil
}

// oneArg reads exactly one argument of the current option into v.
func oneArg(d *caddyfile.Dispenser, v *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*v = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Store)(nil)
