// Command envoysim serves an Envoy bootstrap with the internal/envoysim
// stand-in, for tests and demos that must run without Envoy. It is not a
// production proxy: use real Envoy for that.
//
//	go run ./internal/envoysim/cmd/envoysim -c examples/local/envoy.yaml
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollgate-gw/tollgate/internal/envoysim"
)

func main() {
	path := flag.String("c", "examples/local/envoy.yaml", "Envoy bootstrap file")
	listen := flag.String("listen", "", "listener address override (default: the bootstrap's)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*path, *listen, log); err != nil {
		log.Error("envoysim failed", "error", err)
		os.Exit(1)
	}
}

func run(path, listen string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sim, err := envoysim.LoadFile(path, envoysim.Options{ListenAddr: listen, Logger: log})
	if err != nil {
		return err
	}
	log.Warn("envoysim is a Go test stand-in for Envoy, not a production proxy; run real Envoy in production", "config", path)
	if err := sim.Start(ctx); err != nil {
		return err
	}
	log.Info("envoysim serving", "url", sim.URL())
	go func() {
		// With dynamic_resources, pools arrive over ADS; say when they have.
		if err := sim.WaitReady(ctx); err == nil {
			log.Info("envoysim initialised")
		}
	}()
	<-ctx.Done()
	log.Info("envoysim shutting down")
	return sim.Close()
}
