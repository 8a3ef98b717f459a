// Command fakeprovider serves fake OpenAI and Anthropic APIs for the no-keys
// demo and for manual testing:
//
//	go run ./internal/fakeprovider/cmd/fakeprovider -openai 127.0.0.1:18081 -anthropic 127.0.0.1:18082 -key sk-demo
//
// Either address may be empty to skip that provider. Request headers such as
// x-fake-status and x-fake-delay-ms script failures; see package
// fakeprovider. SIGINT or SIGTERM shuts down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
}

func run() error {
	openaiAddr := flag.String("openai", "127.0.0.1:18081", "listen address of the fake OpenAI API (empty: off)")
	anthropicAddr := flag.String("anthropic", "127.0.0.1:18082", "listen address of the fake Anthropic API (empty: off)")
	key := flag.String("key", "", "API key the fakes require (empty: accept any)")
	reply := flag.String("reply", "", `fixed reply text (empty: "echo: <last user text>")`)
	window := flag.Int("context-window", 0, "reject prompts longer than this many tokens (0: unlimited)")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	opts := []fakeprovider.Option{
		fakeprovider.WithAPIKey(*key), fakeprovider.WithReply(*reply),
		fakeprovider.WithContextWindow(*window), fakeprovider.WithLogger(logger),
	}
	var servers []*fakeprovider.Server
	defer func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}()
	for _, p := range []struct {
		kind fakeprovider.Kind
		addr string
	}{{fakeprovider.OpenAI, *openaiAddr}, {fakeprovider.Anthropic, *anthropicAddr}} {
		if p.addr == "" {
			continue
		}
		s, err := fakeprovider.New(p.kind, append(opts, fakeprovider.WithAddr(p.addr))...)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		logger.Info("fake provider listening", slog.String("provider", string(p.kind)), slog.String("url", s.URL()))
	}
	if len(servers) == 0 {
		return errors.New("no provider address given")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	logger.Info("shutting down")
	// In-flight streams get a few seconds to finish before being cut.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Shutdown(sctx))
	}
	return errors.Join(errs...)
}
