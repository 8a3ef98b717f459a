// Command extproc is Tollgate's Envoy ext_proc server: it serves both of
// Tollgate's Envoy filters over gRPC, plus an admin HTTP port with health
// endpoints.
//
//	extproc [-config tollgate.yaml]
//
// With no -config it runs on the embedded demo config (fake providers on
// localhost, demo key sk-tollgate-demo). The config file is reloaded when
// its content changes (-poll) and on SIGHUP, keeping the last good config
// when the new one is invalid; SIGTERM stops accepting streams and lets
// in-flight ones finish up to server.shutdown_timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/extproc"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Stderr, reload, nil); err != nil {
		fmt.Fprintln(os.Stderr, "extproc:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, when not nil, receives the bound
// gRPC and admin addresses once both listen (tests bind port 0).
func run(ctx context.Context, args []string, logOut io.Writer, reload <-chan os.Signal, ready chan<- [2]string) error {
	fs := flag.NewFlagSet("extproc", flag.ContinueOnError)
	fs.SetOutput(logOut)
	configPath := fs.String("config", "", "config file (default: the embedded demo config)")
	poll := fs.Duration("poll", 5*time.Second, "how often to check the config file for changes (0: only on SIGHUP)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data := config.Default()
	if *configPath != "" {
		var err error
		if data, err = os.ReadFile(*configPath); err != nil {
			return fmt.Errorf("read config: %w", err)
		}
	}
	rt, err := config.FromBytes(data, os.LookupEnv)
	if err != nil {
		return err
	}
	var level slog.LevelVar
	if err := level.UnmarshalText([]byte(rt.Server.LogLevel)); err != nil {
		return fmt.Errorf("server.log_level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: &level}))
	if *configPath == "" {
		log.Warn("running on the embedded demo config: fake providers on localhost and the demo key sk-tollgate-demo")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := accounting.NewMetrics(reg)
	if err != nil {
		return err
	}
	metrics.SetBounds(rt.LabelBounds())
	rdb, err := redisClient(rt)
	if err != nil {
		return err
	}
	if rdb != nil {
		defer rdb.Close()
	}
	spend, err := spendRecorder(rt, rdb, metrics, log)
	if err != nil {
		return err
	}

	pol, err := newPolicy(ctx, rt, rdb, log)
	if err != nil {
		return err
	}
	rl, _ := pol.limiter.(*policy.RedisLimiter)
	if err := reg.Register(policyCollector{auth: pol.auth, limiter: rl}); err != nil {
		return err
	}

	var tracer *tracing.Tracer
	if rt.Tracing.Endpoint != "" {
		if tracer, err = tracing.New(ctx, rt.Tracing); err != nil {
			return fmt.Errorf("tracing: %w", err)
		}
	}

	srv := extproc.New(rt, extproc.Options{Logger: log, LogBodies: rt.Server.LogBodies, Metrics: metrics, Spend: spend,
		Auth: pol.auth, Limiter: pol.limiter, Tracer: tracer})
	// grpc-go accepts 4 MiB by default; Envoy sends whole BUFFERED bodies
	// up to its buffer limit in one message.
	msgLimit := extproc.MessageLimit(rt.Server.MaxRequestBodyBytes)
	gs := grpc.NewServer(append(extproc.GRPCOptions(),
		grpc.MaxRecvMsgSize(msgLimit),
		grpc.MaxSendMsgSize(msgLimit),
		// Envoy keeps one HTTP/2 connection and pings it; don't punish that.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)

	grpcLn, err := listen(rt.Server.GRPCAddress)
	if err != nil {
		return fmt.Errorf("server.grpc_address: %w", err)
	}
	adminLn, err := net.Listen("tcp", rt.Server.AdminAddress)
	if err != nil {
		grpcLn.Close()
		return fmt.Errorf("server.admin_address: %w", err)
	}
	var draining atomic.Bool
	mux := adminMux(&draining, rt.Server.Pprof)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if rt.MasterKey != "" {
		// Model names are checked against the running config, reloads included.
		known := func(m string) bool { _, err := srv.Runtime().Routes.Resolve(m); return err == nil }
		h, err := admin.New(admin.Config{MasterKey: rt.MasterKey, Store: pol.store, Spend: spendTotals{spend},
			SpendLogs: accounting.NewSpendLogsHandler(spend, log), KnownModel: known, Logger: log})
		if err != nil {
			return err
		}
		for _, prefix := range []string{"/key/", "/team/", "/spend/"} {
			mux.Handle(prefix, h)
		}
	}
	admin := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(grpcLn) }()
	go func() { errc <- admin.Serve(adminLn) }()
	log.Info("serving", slog.String("grpc_address", grpcLn.Addr().String()), slog.String("admin_address", adminLn.Addr().String()))
	if ready != nil {
		ready <- [2]string{grpcLn.Addr().String(), adminLn.Addr().String()}
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if *configPath != "" {
		// The same file drives cmd/xds: following its edits keeps this
		// replica on the pool version Envoy has.
		go config.Watch(watchCtx, *configPath, *poll, reload, data,
			func(next []byte) { applyConfig(log, srv, metrics, pol.auth, rt.Server, next) },
			func(err error) {
				log.Error("config file unreadable; keeping the running config", slog.Any("error", err))
			})
	}

	select {
	case err := <-errc:
		gs.Stop()
		admin.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		draining.Store(true)
		hs.Shutdown()
		err := shutdown(log, gs, admin, time.Duration(rt.Server.ShutdownTimeout))
		// Streams are done; every spend record and budget update they
		// produced is flushed before the process exits.
		flushCtx, cancel := context.WithTimeout(context.Background(), time.Duration(rt.Server.ShutdownTimeout))
		defer cancel()
		if ferr := spend.Close(flushCtx); ferr != nil {
			log.Error("spend records lost at shutdown", slog.Any("error", ferr))
		}
		if ferr := pol.close(flushCtx); ferr != nil {
			log.Error("budget updates lost at shutdown", slog.Any("error", ferr))
		}
		if ferr := tracer.Shutdown(flushCtx); ferr != nil {
			log.Error("spans lost at shutdown", slog.Any("error", ferr))
		}
		return err
	}
}

// redisClient connects to the configured Redis; nil when none is.
func redisClient(rt *config.Runtime) (redis.UniversalClient, error) {
	r := rt.Redis
	if !r.Enabled() {
		return nil, nil
	}
	addrs := r.ClusterAddresses
	if r.Address != "" {
		addrs = []string{r.Address}
	}
	opts := &redis.UniversalOptions{Addrs: addrs, Username: r.Username, Password: rt.RedisPassword, DB: r.DB,
		// A slow or dead Redis must not hold requests: per-call deadlines
		// are honoured, one dial attempt, and the callers degrade.
		ContextTimeoutEnabled: true, DialerRetries: 1,
		DialTimeout: 2 * time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
	if len(r.ClusterAddresses) > 0 {
		return redis.NewClusterClient(opts.Cluster()), nil
	}
	return redis.NewClient(opts.Simple()), nil
}

// spendRecorder writes spend records to Redis Streams when Redis is
// configured, else to an in-memory ring.
func spendRecorder(rt *config.Runtime, rdb redis.UniversalClient, metrics *accounting.Metrics, log *slog.Logger) (*accounting.Recorder, error) {
	sp := rt.Accounting.Spend
	var sink accounting.Sink = accounting.NewMemorySink(sp.MemoryLogs)
	if rdb != nil {
		rs, err := accounting.NewRedisSink(accounting.RedisSinkConfig{Client: rdb, Stream: sp.RedisStream, MaxLen: sp.RedisStreamMaxLen, Metrics: metrics})
		if err != nil {
			return nil, fmt.Errorf("accounting: %w", err)
		}
		sink = rs
	}
	return accounting.NewRecorder(accounting.RecorderConfig{Sink: sink, QueueSize: sp.QueueSize, BatchSize: sp.BatchSize,
		FlushInterval: time.Duration(sp.FlushInterval), MaxPending: sp.MaxPending, Metrics: metrics, Logger: log}), nil
}

// applyConfig installs a new config for new streams, or keeps the running
// one when the new one is invalid. Listen addresses and limits of the gRPC
// server are fixed at start; changing them needs a restart.
func applyConfig(log *slog.Logger, srv *extproc.Server, metrics *accounting.Metrics, auth *policy.Authenticator, running config.Server, data []byte) {
	next, err := config.FromBytes(data, os.LookupEnv)
	if err != nil {
		log.Error("config reload rejected; keeping the running config", slog.Any("error", err))
		return
	}
	if s := next.Server; s.GRPCAddress != running.GRPCAddress || s.AdminAddress != running.AdminAddress || s.MaxRequestBodyBytes != running.MaxRequestBodyBytes {
		log.Warn("server addresses and body limit changed in the config take effect only after a restart")
	}
	metrics.SetBounds(next.LabelBounds())
	auth.SetStatic(next.Keys)
	srv.SwapRuntime(next)
	log.Info("config reloaded")
}

// shutdown stops accepting streams and waits for in-flight ones up to the
// deadline, then cuts the rest.
func shutdown(log *slog.Logger, gs *grpc.Server, admin *http.Server, timeout time.Duration) error {
	log.Info("draining", slog.Duration("timeout", timeout))
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		log.Warn("shutdown deadline reached; closing streams still in flight")
		gs.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return admin.Shutdown(ctx)
}

// listen takes host:port or unix:///path.
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		// A socket file left by a killed process would block the bind.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

func adminMux(draining *atomic.Bool, profiling bool) *http.ServeMux {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// policyParts are the key store, authenticator and limiter: in Redis when
// configured, so every replica shares them, else in this process.
type policyParts struct {
	store   policy.Store
	auth    *policy.Authenticator
	limiter policy.Limiter
	close   func(context.Context) error
}

func newPolicy(ctx context.Context, rt *config.Runtime, rdb redis.UniversalClient, log *slog.Logger) (policyParts, error) {
	p := rt.Policy
	lc := policy.LimiterConfig{Logger: log, Prefix: p.RedisPrefix, Failure: policy.FailureMode(p.OnRedisFailure),
		SlotLease: time.Duration(p.ParallelSlotLease),
		OnSoftBudget: func(e policy.SoftBudgetEvent) {
			log.Warn("soft budget crossed", slog.String("scope", string(e.Scope)), slog.String("id", e.ID))
		}}
	var parts policyParts
	if rdb == nil {
		parts.store = policy.NewMemoryStore()
		parts.limiter = policy.NewMemoryLimiter(lc)
		parts.close = func(context.Context) error { return nil }
	} else {
		store, err := policy.NewRedisStore(rdb, policy.RedisStoreConfig{Prefix: p.RedisPrefix})
		if err != nil {
			return parts, fmt.Errorf("policy: %w", err)
		}
		lim, err := policy.NewRedisLimiter(rdb, lc, nil)
		if err != nil {
			return parts, fmt.Errorf("policy: %w", err)
		}
		go lim.Run(ctx)
		parts.store, parts.limiter, parts.close = store, lim, lim.Close
	}
	parts.auth = policy.NewAuthenticator(policy.AuthConfig{Static: rt.Keys, Store: parts.store,
		CacheTTL: time.Duration(p.KeyCacheTTL), Logger: log})
	go parts.auth.Run(ctx)
	return parts, nil
}

// spendTotals gives the admin API the accounting recorder's totals.
type spendTotals struct{ rec *accounting.Recorder }

func (s spendTotals) KeySpend(ctx context.Context, keyID string) (float64, error) {
	t, err := s.rec.Totals(ctx, keyID)
	return t.Spend, err
}

func (s spendTotals) TeamSpend(ctx context.Context, team string) (float64, error) {
	t, err := s.rec.TeamTotals(ctx, team)
	return t.Spend, err
}
