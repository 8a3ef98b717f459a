package accounting_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

// redisServer is a throw-away redis-server on 127.0.0.1, without
// persistence, that a test can kill and start again on the same port.
type redisServer struct {
	t       *testing.T
	path    string
	port    int
	dir     string
	cluster bool
	cmd     *exec.Cmd
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func startRedis(t *testing.T, cluster bool) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server); skipping the Redis sink tests")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := &redisServer{t: t, path: path, port: port, dir: t.TempDir(), cluster: cluster}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	s.cmd = exec.Command(s.path, args...)
	s.cmd.Dir = s.dir
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	waitFor(s.t, 5*time.Second, "redis-server answers PING", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
	if s.cluster {
		// One node holding every slot: a real cluster to the client, which
		// then splits pipelines by slot and rejects cross-slot commands.
		if err := c.Do(context.Background(), "cluster", "addslotsrange", "0", "16383").Err(); err != nil {
			s.t.Fatalf("assign slots: %v", err)
		}
		waitFor(s.t, 5*time.Second, "cluster state ok", func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
}

func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newRedisClient(addr string) *redis.Client {
	// No client retries: the Recorder owns retrying, with backoff.
	return redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
}

func TestRedisSink_ConcurrentTotals(t *testing.T) {
	tests := []struct {
		name    string
		cluster bool
	}{
		{"standalone", false},
		{"cluster", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRedis(t, tt.cluster)
			var client redis.UniversalClient
			if tt.cluster {
				client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.addr()}})
			} else {
				client = newRedisClient(srv.addr())
			}
			defer client.Close()
			sink, err := accounting.NewRedisSink(accounting.RedisSinkConfig{Client: client})
			if err != nil {
				t.Fatal(err)
			}
			r := accounting.NewRecorder(accounting.RecorderConfig{
				Sink: sink, FlushInterval: 10 * time.Millisecond, QueueSize: loadRecords,
			})
			if refused := recordConcurrently(t, r); refused != 0 {
				t.Fatalf("%d records refused", refused)
			}
			if err := r.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkLoad(t, r)
			if n := client.XLen(t.Context(), "tollgate:spend:logs").Val(); n != loadRecords {
				t.Errorf("stream length %d, want %d", n, loadRecords)
			}
		})
	}
}

// Redis dies mid-run and comes back empty (no persistence): the records
// taken while it was down are written once it is back, each exactly once.
func TestRedisSink_RedisRestart(t *testing.T) {
	srv := startRedis(t, false)
	client := newRedisClient(srv.addr())
	defer client.Close()
	m, reg := newTestMetrics(t)
	sink, err := accounting.NewRedisSink(accounting.RedisSinkConfig{Client: client, Timeout: time.Second, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r := accounting.NewRecorder(accounting.RecorderConfig{
		Sink: sink, FlushInterval: 10 * time.Millisecond,
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, Metrics: m,
	})
	ctx := t.Context()
	xlen := func() int64 { return client.XLen(ctx, "tollgate:spend:logs").Val() }

	for i := range 300 {
		r.Record(loadRecord(i))
	}
	waitFor(t, 5*time.Second, "the first 300 records are in Redis", func() bool { return xlen() == 300 })

	srv.kill()
	for i := 300; i < 800; i++ {
		if !r.Record(loadRecord(i)) {
			t.Fatalf("record %d refused while Redis is down", i)
		}
	}
	redisErrors := func() float64 {
		return metric(t, reg, "tollgate_redis_errors_total", map[string]string{"operation": "spend_write"}).GetCounter().GetValue()
	}
	waitFor(t, 5*time.Second, "writes fail while Redis is down", func() bool {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "tollgate_redis_errors_total" {
				return redisErrors() >= 2
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "the queue depth gauge shows the 500 waiting records", func() bool {
		return metric(t, reg, "tollgate_spend_queue_records", nil).GetGauge().GetValue() == 500
	})

	srv.start()
	waitFor(t, 10*time.Second, "the queued records reach the restarted Redis", func() bool { return xlen() == 500 })
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := xlen(); n != 500 {
		t.Errorf("stream length %d after Close, want 500", n)
	}
	if r.Dropped() != 0 {
		t.Errorf("dropped %d records", r.Dropped())
	}

	recs, err := r.Query(ctx, accounting.Filter{Limit: accounting.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		seen[rec.RequestID] = true
	}
	for i := 300; i < 800; i++ {
		if id := loadRecord(i).RequestID; !seen[id] {
			t.Errorf("record %s lost", id)
		}
	}
	want := accounting.Totals{}
	for i := 300; i < 800; i++ {
		if rec := loadRecord(i); rec.KeyID == "key-07" {
			want.Spend += rec.Cost
			want.Requests++
			want.InputTokens += rec.Usage.InputTokens
			want.OutputTokens += rec.Usage.OutputTokens
		}
	}
	if got, err := r.Totals(ctx, "key-07"); err != nil || got != want {
		t.Errorf("totals of key-07 = %+v (%v), want %+v", got, err, want)
	}
}

func TestRedisSink_Query(t *testing.T) {
	srv := startRedis(t, false)
	client := newRedisClient(srv.addr())
	defer client.Close()
	sink, err := accounting.NewRedisSink(accounting.RedisSinkConfig{Client: client, Stream: "logs", TotalsPrefix: "tot:"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Record times lie before their insertion, as in production; the
	// stream's IDs bound the scan from below.
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var b accounting.Batch
	for i := range 1200 {
		rec := loadRecord(i)
		rec.Time = start.Add(time.Duration(i) * time.Second)
		b.Records = append(b.Records, rec)
	}
	if rest, err := sink.Write(ctx, b); err != nil || !rest.Empty() {
		t.Fatalf("Write: %v, rest %d", err, len(rest.Records))
	}
	// An entry Tollgate did not write is skipped.
	client.XAdd(ctx, &redis.XAddArgs{Stream: "logs", Values: []any{"v", "not json"}})

	tests := []struct {
		name      string
		f         accounting.Filter
		wantLen   int
		wantFirst string
	}{
		{"default limit", accounting.Filter{}, accounting.DefaultQueryLimit, "req-01199"},
		{"max limit pages through the stream", accounting.Filter{Limit: 1000}, 1000, "req-01199"},
		{"key", accounting.Filter{KeyID: "key-11"}, 60, "req-01191"},
		{"team and model group", accounting.Filter{Team: "team-3", ModelGroup: "claude"}, 100, "req-01199"},
		{"no match", accounting.Filter{Team: "team-3", ModelGroup: "gpt-4o"}, 0, ""},
		{"time range", accounting.Filter{From: start.Add(10 * time.Second), To: start.Add(20 * time.Second)}, 10, "req-00019"},
		{"from after every record", accounting.Filter{From: time.Now().Add(time.Hour)}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := sink.Query(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.wantLen {
				t.Fatalf("%d records, want %d", len(recs), tt.wantLen)
			}
			if tt.wantLen > 0 && recs[0].RequestID != tt.wantFirst {
				t.Errorf("first %s, want %s", recs[0].RequestID, tt.wantFirst)
			}
		})
	}

	if _, err := sink.Totals(ctx, accounting.TotalsKey{Scope: accounting.ScopeTeam, ID: "team-0"}); err != nil {
		t.Errorf("Totals: %v", err)
	}
	client.HSet(ctx, "tot:key:broken", "spend", "lots")
	if _, err := sink.Totals(ctx, accounting.TotalsKey{Scope: accounting.ScopeKey, ID: "broken"}); err == nil ||
		!strings.Contains(err.Error(), "spend") {
		t.Errorf("Totals of a corrupt hash = %v, want an error naming the field", err)
	}

	srv.kill()
	if _, err := sink.Query(ctx, accounting.Filter{}); err == nil {
		t.Error("Query with Redis down succeeded")
	}
	if _, err := sink.Totals(ctx, accounting.TotalsKey{ID: "x"}); err == nil {
		t.Error("Totals with Redis down succeeded")
	}
}

func TestNewRedisSink_NoClient(t *testing.T) {
	if _, err := accounting.NewRedisSink(accounting.RedisSinkConfig{}); err == nil {
		t.Error("NewRedisSink without a client succeeded")
	}
}
