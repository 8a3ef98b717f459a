// Command xds is Tollgate's xDS server: it renders the gateway config's
// model groups into Envoy pool clusters and serves them over ADS.
//
//	xds -config tollgate.yaml [-addr 127.0.0.1:18000] [-poll 5s] [-metrics 127.0.0.1:18001]
//
// The config file is checked every -poll and on SIGHUP; a changed pool set
// is pushed as a new version, a bad edit is logged and the last good
// version keeps serving. SIGTERM or SIGINT ends the xDS streams (Envoy
// reconnects elsewhere or keeps its last config) and stops.
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
	"os"
	"os/signal"
	"syscall"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-gw/tollgate/internal/xds"
)

// shutdownTimeout bounds how long the gRPC server waits for streams to end
// after they were told to.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Stderr, reload, nil); err != nil {
		fmt.Fprintln(os.Stderr, "xds:", err)
		os.Exit(1)
	}
}

// addrs are the bound listen addresses, reported to tests that bind port 0.
type addrs struct {
	grpc, metrics string
}

// run serves until ctx is done. ready, when not nil, receives the bound
// addresses once the servers listen.
func run(ctx context.Context, args []string, logOut io.Writer, reload <-chan os.Signal, ready chan<- addrs) error {
	fs := flag.NewFlagSet("xds", flag.ContinueOnError)
	fs.SetOutput(logOut)
	configPath := fs.String("config", "", "Tollgate config file (required)")
	addr := fs.String("addr", "127.0.0.1:18000", "gRPC listen address (ADS, CDS, health)")
	poll := fs.Duration("poll", 5*time.Second, "how often to check the config file for changes; 0 checks only on SIGHUP")
	metricsAddr := fs.String("metrics", "", "HTTP listen address for /metrics; empty disables it")
	extprocCluster := fs.String("extproc-cluster", xds.DefaultExtProcCluster, "Envoy cluster of the ext_proc server, called by each pool's upstream filter")
	trustedCA := fs.String("trusted-ca", xds.DefaultTrustedCA, "CA bundle Envoy verifies providers against")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" {
		return errors.New("-config is required")
	}
	if *poll < 0 {
		return errors.New("-poll must not be negative")
	}
	var level slog.LevelVar
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: &level}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The xDS streams live on their own context: cancelling it is what ends
	// them at shutdown, since they never end by themselves.
	streamsCtx, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	srv, err := xds.NewServer(streamsCtx, xds.Options{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	src := xds.Source{
		Path:   *configPath,
		Render: xds.RenderOptions{ExtProcCluster: *extprocCluster, TrustedCA: *trustedCA},
	}
	// With no good config there is nothing to serve: refuse to start.
	if err := srv.Reload(ctx, src); err != nil {
		return err
	}

	gs := grpc.NewServer(
		// Envoy pings its xDS connection; don't punish that.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	srv.Register(gs)
	hs := health.NewServer()
	hs.SetServingStatus(discoveryv3.AggregatedDiscoveryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(lis) }()
	bound := addrs{grpc: lis.Addr().String()}

	var metrics *http.Server
	if *metricsAddr != "" {
		mlis, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			gs.Stop()
			return fmt.Errorf("-metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- metrics.Serve(mlis) }()
		bound.metrics = mlis.Addr().String()
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); srv.Watch(watchCtx, src, *poll, reload) }()
	log.Info("serving", slog.String("grpc_address", bound.grpc), slog.String("metrics_address", bound.metrics),
		slog.String("config", *configPath), slog.Duration("poll", *poll), slog.String("pool_version", srv.Version()))
	if ready != nil {
		ready <- bound
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	}
	log.Info("shutting down")
	stopWatch()
	hs.Shutdown()
	endStreams()
	stopGRPC(log, gs)
	if metrics != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := metrics.Shutdown(sctx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("stop metrics: %w", err)
		}
	}
	<-watchDone
	return serveErr
}

// stopGRPC lets in-flight calls finish up to shutdownTimeout, then cuts them.
func stopGRPC(log *slog.Logger, gs *grpc.Server) {
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	timer := time.NewTimer(shutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		log.Warn("shutdown deadline reached; closing streams still open")
		gs.Stop()
		<-done
	}
}
