package accounting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSinkConfig configures a RedisSink. Zero values take the defaults.
type RedisSinkConfig struct {
	// Client is a redis.Client or redis.ClusterClient; the caller owns it.
	Client redis.Cmdable
	// Stream is the stream key of spend logs. Default "tollgate:spend:logs".
	Stream string
	// TotalsPrefix starts the hash keys of running totals, followed by
	// "key:<id>" or "team:<id>". Default "tollgate:spend:totals:".
	TotalsPrefix string
	// MaxLen caps the stream, approximately (XADD MAXLEN ~), so Redis
	// memory stays bounded. Default 1,000,000 entries.
	MaxLen int64
	// Timeout bounds each Redis round trip. Default 2s.
	Timeout time.Duration
	// MaxScan bounds the stream entries one Query reads, so a filter that
	// matches nothing cannot walk the whole stream. Default 100,000.
	MaxScan int
	// Metrics counts Redis errors. Nil: none.
	Metrics *Metrics
}

// Redis operation names for tollgate_redis_errors_total.
const (
	redisOpSpendWrite  = "spend_write"
	redisOpSpendQuery  = "spend_query"
	redisOpSpendTotals = "spend_totals"
)

// Hash fields of running totals.
const (
	fieldSpend        = "spend"
	fieldRequests     = "requests"
	fieldInputTokens  = "input_tokens"
	fieldOutputTokens = "output_tokens"
)

// queryPage is the stream entries read per XREVRANGE.
const queryPage = 500

// Fields of a stream entry: the SpendLog JSON, and copies of the fields
// Query filters on.
const (
	entryLog        = "v"
	entryKey        = "key_id"
	entryTeam       = "team"
	entryModelGroup = "model_group"
)

// matchEntry reports whether a stream entry can match f, judged on the
// filter fields stored beside the JSON.
func (f *Filter) matchEntry(v map[string]any) bool {
	field := func(name string) string { s, _ := v[name].(string); return s }
	return (f.KeyID == "" || field(entryKey) == f.KeyID) &&
		(f.Team == "" || field(entryTeam) == f.Team) &&
		(f.ModelGroup == "" || field(entryModelGroup) == f.ModelGroup)
}

// RedisSink stores spend logs in a Redis stream (one XADD per record, each
// entry's field "v" holding the SpendLog JSON, beside key_id, team and
// model_group for filtering) and running totals in one
// hash per key and team (HINCRBYFLOAT/HINCRBY). Every command touches one
// key and no scripts or transactions are used, so it works on Redis
// Cluster, where a batch's pipeline is split by slot.
//
// Delivery is at least once: a command whose reply is lost (connection cut
// after Redis applied it) is retried, and its record may then appear twice.
type RedisSink struct {
	cfg RedisSinkConfig
}

var _ Sink = (*RedisSink)(nil)

// NewRedisSink returns a sink writing through c.Client.
func NewRedisSink(c RedisSinkConfig) (*RedisSink, error) {
	if c.Client == nil {
		return nil, errors.New("redis spend sink: no client")
	}
	if c.Stream == "" {
		c.Stream = "tollgate:spend:logs"
	}
	if c.TotalsPrefix == "" {
		c.TotalsPrefix = "tollgate:spend:totals:"
	}
	if c.MaxLen <= 0 {
		c.MaxLen = 1_000_000
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.MaxScan <= 0 {
		c.MaxScan = 100_000
	}
	return &RedisSink{cfg: c}, nil
}

func (s *RedisSink) totalsKey(k TotalsKey) string {
	return s.cfg.TotalsPrefix + k.Scope.String() + ":" + k.ID
}

type deltaCmds struct {
	key               TotalsKey
	delta             Totals
	spend             *redis.FloatCmd
	requests, in, out *redis.IntCmd
}

// Write sends the batch in one pipeline and returns the records and totals
// fields whose commands failed.
func (s *RedisSink) Write(ctx context.Context, b Batch) (Batch, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	pipe := s.cfg.Client.Pipeline()
	adds := make([]*redis.StringCmd, len(b.Records))
	var encodeErrs []error
	for i := range b.Records {
		l := b.Records[i].SpendLog()
		data, err := json.Marshal(&l)
		if err != nil {
			// Only non-finite floats fail, and Recorder.Record clears
			// them; a record that cannot be encoded would fail forever, so
			// it is reported and not retried.
			encodeErrs = append(encodeErrs, fmt.Errorf("encode spend log %q: %w", b.Records[i].RequestID, err))
			continue
		}
		rec := &b.Records[i]
		adds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: s.cfg.Stream,
			MaxLen: s.cfg.MaxLen,
			Approx: true,
			// The filter fields ride beside the JSON so Query can skip
			// entries without decoding them.
			Values: []any{entryKey, rec.KeyID, entryTeam, rec.Team, entryModelGroup, rec.ModelGroup, entryLog, data},
		})
	}
	deltas := make([]deltaCmds, 0, len(b.Deltas))
	for k, d := range b.Deltas {
		key := s.totalsKey(k)
		dc := deltaCmds{key: k, delta: d}
		if d.Spend != 0 {
			dc.spend = pipe.HIncrByFloat(ctx, key, fieldSpend, d.Spend)
		}
		if d.Requests != 0 {
			dc.requests = pipe.HIncrBy(ctx, key, fieldRequests, d.Requests)
		}
		if d.InputTokens != 0 {
			dc.in = pipe.HIncrBy(ctx, key, fieldInputTokens, d.InputTokens)
		}
		if d.OutputTokens != 0 {
			dc.out = pipe.HIncrBy(ctx, key, fieldOutputTokens, d.OutputTokens)
		}
		deltas = append(deltas, dc)
	}
	encodeErr := errors.Join(encodeErrs...)
	if pipe.Len() == 0 {
		return Batch{}, encodeErr
	}
	_, execErr := pipe.Exec(ctx)
	if execErr == nil {
		return Batch{}, encodeErr
	}
	s.cfg.Metrics.RedisError(redisOpSpendWrite)

	var rest Batch
	for i, c := range adds {
		if c != nil && c.Err() != nil {
			rest.Records = append(rest.Records, b.Records[i])
		}
	}
	for _, dc := range deltas {
		var left Totals
		if dc.spend != nil && dc.spend.Err() != nil {
			left.Spend = dc.delta.Spend
		}
		if dc.requests != nil && dc.requests.Err() != nil {
			left.Requests = dc.delta.Requests
		}
		if dc.in != nil && dc.in.Err() != nil {
			left.InputTokens = dc.delta.InputTokens
		}
		if dc.out != nil && dc.out.Err() != nil {
			left.OutputTokens = dc.delta.OutputTokens
		}
		if left != (Totals{}) {
			if rest.Deltas == nil {
				rest.Deltas = make(map[TotalsKey]Totals)
			}
			rest.Deltas[dc.key] = left
		}
	}
	return rest, errors.Join(fmt.Errorf("write spend to redis: %w", execErr), encodeErr)
}

// Query reads the stream newest first (XREVRANGE, in pages) and filters
// the entries. Only entries added at or after f.From are read, since a
// record is added after its request started; at most MaxScan entries are
// read per call.
func (s *RedisSink) Query(ctx context.Context, f Filter) ([]Record, error) {
	limit := f.limit()
	end, start := "+", "-"
	if !f.From.IsZero() {
		start = strconv.FormatInt(max(f.From.UnixMilli(), 0), 10)
	}
	var out []Record
	for scanned := 0; scanned < s.cfg.MaxScan && len(out) < limit; {
		// Timeout bounds each round trip; decoding a long scan is bounded
		// by MaxScan and the caller's context, not by one round trip's time.
		pageCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		msgs, err := s.cfg.Client.XRevRangeN(pageCtx, s.cfg.Stream, end, start, queryPage).Result()
		cancel()
		if err != nil {
			s.cfg.Metrics.RedisError(redisOpSpendQuery)
			return nil, fmt.Errorf("query spend logs: %w", err)
		}
		for _, m := range msgs {
			scanned++
			if !f.matchEntry(m.Values) {
				continue
			}
			raw, _ := m.Values[entryLog].(string)
			var l SpendLog
			if json.Unmarshal([]byte(raw), &l) != nil {
				// Not written by Tollgate; nothing to show.
				continue
			}
			r := l.Record()
			if f.match(&r) {
				out = append(out, r)
				if len(out) == limit {
					break
				}
			}
		}
		if len(msgs) < queryPage {
			break
		}
		// Exclusive start (Redis 6.2+) continues after the last entry.
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

// Totals reads the running totals hash of k.
func (s *RedisSink) Totals(ctx context.Context, k TotalsKey) (Totals, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	h, err := s.cfg.Client.HGetAll(ctx, s.totalsKey(k)).Result()
	if err != nil {
		s.cfg.Metrics.RedisError(redisOpSpendTotals)
		return Totals{}, fmt.Errorf("read spend totals of %s %q: %w", k.Scope, k.ID, err)
	}
	var t Totals
	var errs []error
	parseInt := func(field string, dst *int64) {
		if v, ok := h[field]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("field %s: %w", field, err))
			}
			*dst = n
		}
	}
	if v, ok := h[fieldSpend]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", fieldSpend, err))
		}
		t.Spend = f
	}
	parseInt(fieldRequests, &t.Requests)
	parseInt(fieldInputTokens, &t.InputTokens)
	parseInt(fieldOutputTokens, &t.OutputTokens)
	if len(errs) > 0 {
		return t, fmt.Errorf("read spend totals of %s %q: %w", k.Scope, k.ID, errors.Join(errs...))
	}
	return t, nil
}
