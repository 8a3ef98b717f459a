package xds

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// Source is the gateway config file the pools are rendered from.
type Source struct {
	// Path of the Tollgate config file.
	Path string
	// Env resolves os.environ/ references; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Render are the rendering options.
	Render RenderOptions
}

// Reload reads, renders and serves src. On any error the last good
// snapshot keeps serving; the error is logged once and counted, and
// returned so a caller at startup can refuse to run without a config.
func (s *Server) Reload(ctx context.Context, src Source) error {
	data, err := os.ReadFile(src.Path)
	if err != nil {
		err = fmt.Errorf("read config: %w", err)
		s.reject(src, err)
		return err
	}
	return s.apply(ctx, src, data)
}

// Watch reloads src whenever its content changes (checked every poll; a
// zero poll disables polling) and on every value from reload (SIGHUP); see
// config.Watch. Run Reload first: Watch reloads only content that differs
// from what was last applied.
func (s *Server) Watch(ctx context.Context, src Source, poll time.Duration, reload <-chan os.Signal) {
	s.mu.Lock()
	applied := s.applied
	s.mu.Unlock()
	config.Watch(ctx, src.Path, poll, reload, applied,
		func(data []byte) { _ = s.apply(ctx, src, data) }, // logged and counted by apply
		func(err error) { s.reject(src, fmt.Errorf("read config: %w", err)) })
}

// apply loads, renders and serves one version of the config content, and
// logs and counts the outcome.
func (s *Server) apply(ctx context.Context, src Source, data []byte) error {
	s.mu.Lock()
	s.applied = data
	s.mu.Unlock()
	version, changed, err := s.load(ctx, src, data)
	switch {
	case err != nil:
		s.reject(src, err)
		return err
	case !changed:
		s.metrics.loads.WithLabelValues(loadUnchanged).Inc()
		s.log.Info("config loaded; pools unchanged", slog.String("path", src.Path), slog.String("pool_version", version))
	default:
		s.metrics.loads.WithLabelValues(loadApplied).Inc()
		s.log.Info("config loaded; new pool version", slog.String("path", src.Path), slog.String("pool_version", version))
	}
	return nil
}

func (s *Server) load(ctx context.Context, src Source, data []byte) (version string, changed bool, err error) {
	env := src.Env
	if env == nil {
		env = os.LookupEnv
	}
	rt, err := config.FromBytes(data, env)
	if err != nil {
		return "", false, err
	}
	clusters, err := Render(rt, src.Render)
	if err != nil {
		return "", false, fmt.Errorf("render pools: %w", err)
	}
	return s.SetClusters(ctx, clusters)
}

func (s *Server) reject(src Source, err error) {
	s.metrics.loads.WithLabelValues(loadRejected).Inc()
	msg := "config rejected; the last good pool version keeps serving"
	version := s.Version()
	if version == "" {
		msg = "config rejected; no pool version to serve yet"
	}
	s.log.Error(msg, slog.String("path", src.Path), slog.String("pool_version", version), slog.Any("error", err))
}
