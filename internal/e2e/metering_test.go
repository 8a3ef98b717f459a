package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

// TestMetering_EndToEnd: what the SDK is told it used is what the spend
// records and the metrics say, and the metrics endpoint serves them.
func TestMetering_EndToEnd(t *testing.T) {
	s := startStack(t)
	var usage openai.CompletionUsage
	for _, model := range []string{"gpt-4o", "claude-sonnet"} {
		params := userMessage("count these four words")
		params.Model = model
		var resp *http.Response
		cc, err := s.client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("x-tollgate-response-cost") == "" {
			t.Errorf("%s: no x-tollgate-response-cost", model)
		}
		usage.PromptTokens += cc.Usage.PromptTokens
		usage.CompletionTokens += cc.Usage.CompletionTokens
	}

	var totals accounting.Totals
	deadline := time.Now().Add(5 * time.Second)
	for totals.Requests < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		totals, _ = s.spend.Totals(context.Background(), "demo")
	}
	if totals.Requests != 2 || totals.InputTokens != usage.PromptTokens || totals.OutputTokens != usage.CompletionTokens || totals.Spend <= 0 {
		t.Errorf("spend totals %+v, SDK usage %+v", totals, usage)
	}

	body := scrapeRegistry(t, s)
	for _, series := range []string{
		`gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="anthropic"`,
		`gen_ai_server_request_duration_seconds_count{`,
		`tollgate_requests_total{`,
		`tollgate_spend_usd_total{`,
		`tollgate_extproc_message_duration_seconds_count{filter="upstream"`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if problems, err := testutil.GatherAndLint(s.registry); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// scrapeRegistry reads the stack's metrics the way Prometheus does, over
// HTTP in the text format.
func scrapeRegistry(t *testing.T, s *stack) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
