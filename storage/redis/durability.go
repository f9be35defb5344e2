package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// notReplicatedError is a write the master applied but fewer than min_replicas_ack replicas
// acknowledged in time. It is a plain error to the handler: 503.
type notReplicatedError struct {
	acked, want int64
}

func (e *notReplicatedError) Error() string {
	return fmt.Sprintf("redis store: %d of %d required replicas acknowledged the write", e.acked, e.want)
}

// write runs a registry write, and with MinReplicasAck waits until that many replicas have
// it. WAIT counts the writes of its own connection, so the write and the WAIT share one
// connection to the master that owns key.
func (s *Store) write(ctx context.Context, key string, run func(goredis.Scripter) error) error {
	if s.MinReplicasAck == 0 {
		return run(s.client)
	}
	master, err := s.masterFor(ctx, key)
	if err != nil {
		return err
	}
	conn := master.Conn()
	defer conn.Close()
	if err := run(conn); err != nil {
		return err
	}
	acked, err := conn.Wait(ctx, s.MinReplicasAck, time.Duration(s.ReplicaAckTimeout)).Result()
	if err != nil {
		return fmt.Errorf("waiting for replicas: %w", err)
	}
	if acked < int64(s.MinReplicasAck) {
		return &notReplicatedError{acked: acked, want: int64(s.MinReplicasAck)}
	}
	return nil
}

// masterFor returns the client of the master that owns key: the Cluster node of its slot,
// else the client itself (standalone, or Sentinel's current master).
func (s *Store) masterFor(ctx context.Context, key string) (*goredis.Client, error) {
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *goredis.Client:
		return c, nil
	default:
		return nil, fmt.Errorf("redis store: min_replicas_ack is not supported with a %T", s.client)
	}
}
