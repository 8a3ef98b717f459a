package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStoreConfig configures a RedisStore. Zero values take the defaults
// named on each field.
type RedisStoreConfig struct {
	// Prefix starts every Redis key and the change channel; default "tg".
	Prefix string
	// Timeout bounds each Redis call; default 250ms.
	Timeout time.Duration
}

// RedisStore is a Store in Redis, standalone or Cluster (any
// redis.UniversalClient). Each record is one JSON string whose key carries
// a hash tag ({key:<hash>}, {team:<id>}), so all of one record's data sits
// in one Cluster slot; changes are announced on a pub/sub channel.
type RedisStore struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on c; it does not own or close c. c must
// honour context deadlines (see checkClient).
func NewRedisStore(c redis.UniversalClient, cfg RedisStoreConfig) (*RedisStore, error) {
	if err := checkClient(c); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "tg"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	return &RedisStore{c: c, prefix: cfg.Prefix, timeout: cfg.Timeout}, nil
}

// checkClient rejects clients that ignore context deadlines: go-redis
// applies them to reads and writes only with ContextTimeoutEnabled, and
// without it a hung Redis stalls each request for the client's
// ReadTimeout (3s by default) instead of the policy timeouts.
func checkClient(c redis.UniversalClient) error {
	var enabled bool
	switch v := c.(type) {
	case *redis.Client:
		enabled = v.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		enabled = v.Options().ContextTimeoutEnabled
	case *redis.Ring:
		enabled = v.Options().ContextTimeoutEnabled
	default:
		return fmt.Errorf("policy: unsupported redis client %T", c)
	}
	if !enabled {
		return errors.New("policy: the redis client must set ContextTimeoutEnabled so per-call deadlines apply")
	}
	return nil
}

func (s *RedisStore) keyName(hash string) string { return s.prefix + ":{key:" + hash + "}" }
func (s *RedisStore) teamName(id string) string  { return s.prefix + ":{team:" + id + "}" }
func (s *RedisStore) keyIndex() string           { return s.prefix + ":keys" }
func (s *RedisStore) teamIndex() string          { return s.prefix + ":teams" }
func (s *RedisStore) channel() string            { return s.prefix + ":changes" }

func (s *RedisStore) get(ctx context.Context, name string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b, err := s.c.Get(ctx, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("redis get: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", name, err)
	}
	return nil
}

// put writes the record before adding it to the index, so a listed id
// always has a record; the record and index live in different slots and
// cannot be written atomically in a Cluster.
func (s *RedisStore) put(ctx context.Context, name, index, id string, v any, ch Change) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.c.Set(ctx, name, b, 0).Err(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	if err := s.c.SAdd(ctx, index, id).Err(); err != nil {
		return fmt.Errorf("redis sadd: %w", err)
	}
	return s.publish(ctx, ch)
}

func (s *RedisStore) del(ctx context.Context, name, index, id string, ch Change) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.c.Del(ctx, name).Result()
	if err != nil {
		return fmt.Errorf("redis del: %w", err)
	}
	if err := s.c.SRem(ctx, index, id).Err(); err != nil {
		return fmt.Errorf("redis srem: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return s.publish(ctx, ch)
}

func (s *RedisStore) publish(ctx context.Context, ch Change) error {
	msg := "key:" + ch.KeyHash
	if ch.TeamID != "" {
		msg = "team:" + ch.TeamID
	}
	if err := s.c.Publish(ctx, s.channel(), msg).Err(); err != nil {
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// list reads every record named in an index with one pipeline; ids whose
// record vanished between the two reads are skipped.
func list[T any](ctx context.Context, s *RedisStore, index string, name func(string) string) ([]*T, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ids, err := s.c.SMembers(ctx, index).Result()
	if err != nil {
		return nil, fmt.Errorf("redis smembers: %w", err)
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, name(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis get: %w", err)
	}
	out := make([]*T, 0, len(ids))
	for _, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis get: %w", err)
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", c.Args()[1], err)
		}
		out = append(out, v)
	}
	return out, nil
}

// GetKey implements KeyStore.
func (s *RedisStore) GetKey(ctx context.Context, hash string) (*KeyRecord, error) {
	r := new(KeyRecord)
	if err := s.get(ctx, s.keyName(hash), r); err != nil {
		return nil, err
	}
	return r, nil
}

// PutKey implements KeyStore.
func (s *RedisStore) PutKey(ctx context.Context, rec *KeyRecord) error {
	return s.put(ctx, s.keyName(rec.Hash), s.keyIndex(), rec.Hash, rec, Change{KeyHash: rec.Hash})
}

// DeleteKey implements KeyStore.
func (s *RedisStore) DeleteKey(ctx context.Context, hash string) error {
	return s.del(ctx, s.keyName(hash), s.keyIndex(), hash, Change{KeyHash: hash})
}

// ListKeys implements KeyStore.
func (s *RedisStore) ListKeys(ctx context.Context) ([]*KeyRecord, error) {
	return list[KeyRecord](ctx, s, s.keyIndex(), s.keyName)
}

// GetTeam implements TeamStore.
func (s *RedisStore) GetTeam(ctx context.Context, id string) (*Team, error) {
	t := new(Team)
	if err := s.get(ctx, s.teamName(id), t); err != nil {
		return nil, err
	}
	return t, nil
}

// PutTeam implements TeamStore.
func (s *RedisStore) PutTeam(ctx context.Context, t *Team) error {
	return s.put(ctx, s.teamName(t.ID), s.teamIndex(), t.ID, t, Change{TeamID: t.ID})
}

// DeleteTeam implements TeamStore.
func (s *RedisStore) DeleteTeam(ctx context.Context, id string) error {
	return s.del(ctx, s.teamName(id), s.teamIndex(), id, Change{TeamID: id})
}

// ListTeams implements TeamStore.
func (s *RedisStore) ListTeams(ctx context.Context) ([]*Team, error) {
	return list[Team](ctx, s, s.teamIndex(), s.teamName)
}

// Subscribe implements ChangeFeed over Redis pub/sub. go-redis reconnects
// and resubscribes by itself after a failure; every subscription
// confirmation calls onResync, since messages published while the
// connection was down are gone.
func (s *RedisStore) Subscribe(ctx context.Context, onChange func(Change), onResync func()) error {
	ps := s.c.Subscribe(ctx, s.channel())
	defer ps.Close()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// Pause so a Redis that is down does not cost a busy loop.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				onResync()
			}
		case *redis.Message:
			if h, ok := strings.CutPrefix(m.Payload, "key:"); ok {
				onChange(Change{KeyHash: h})
			} else if id, ok := strings.CutPrefix(m.Payload, "team:"); ok {
				onChange(Change{TeamID: id})
			}
		}
	}
}
