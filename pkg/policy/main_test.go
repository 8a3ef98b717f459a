package policy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-gw/tollgate/pkg/policy/redistest"
)

// sharedRedis is the package's redis-server, started once by TestMain; nil
// when redis-server is not installed.
var sharedRedis *redistest.Server

func TestMain(m *testing.M) {
	s, err := redistest.Start()
	switch {
	case errors.Is(err, redistest.ErrNoBinary):
		fmt.Fprintln(os.Stderr, "policy tests: redis-server not installed at", redistest.Binary, "- Redis tests skip")
	case err != nil:
		fmt.Fprintln(os.Stderr, "policy tests:", err)
		os.Exit(1)
	default:
		sharedRedis = s
	}
	code := m.Run()
	if sharedRedis != nil {
		sharedRedis.Close()
	}
	os.Exit(code)
}

// redisClient returns a client of the shared server and a key prefix no
// other test uses.
func redisClient(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	if sharedRedis == nil {
		t.Skip("redis-server not installed at " + redistest.Binary)
	}
	return newClient(t, sharedRedis.Addr), uniquePrefix()
}

func newClient(t testing.TB, addr string) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1,
		// As docs/policy.md recommends: one dial attempt and context
		// deadlines honoured, so a Redis that is down or slow fails fast and
		// the fallbacks take over.
		DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// fakeClock is an injectable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }

func newRedisStore(t testing.TB, c redis.UniversalClient, cfg RedisStoreConfig) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewRedis_RejectsClientsIgnoringDeadlines(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewRedisStore(c, RedisStoreConfig{}); err == nil {
		t.Error("NewRedisStore accepted a client without ContextTimeoutEnabled")
	}
	if _, err := NewRedisLimiter(c, LimiterConfig{}, nil); err == nil {
		t.Error("NewRedisLimiter accepted a client without ContextTimeoutEnabled")
	}
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	if _, err := NewRedisLimiter(ok, LimiterConfig{Failure: "sometimes"}, nil); err == nil {
		t.Error("NewRedisLimiter accepted an unknown failure mode")
	}
}
