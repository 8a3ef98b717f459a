package accounting_test

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// The calls an ext_proc server makes: build the table, metrics and recorder
// at start-up, then price, record and observe every finished request, and
// close the recorder on shutdown.
func Example() {
	// Start-up (and every config reload for the table and bounds).
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	metrics, err := accounting.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		fmt.Println(err)
		return
	}
	metrics.SetBounds(accounting.LabelBounds{
		ModelGroups: []string{"claude"}, Deployments: []string{"anthropic-1"},
		Models: []string{"claude-sonnet-4-5"}, Providers: []string{"anthropic"},
	})
	recorder := accounting.NewRecorder(accounting.RecorderConfig{Metrics: metrics})

	// End of a request.
	usage := transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200}
	cost, priced := table.Cost("anthropic-1", "anthropic", "claude-sonnet-4-5", usage)
	recorder.Record(accounting.Record{
		Time: time.Now(), RequestID: "req-1", KeyID: "key-1", Team: "team-a",
		ModelGroup: "claude", Deployment: "anthropic-1", Provider: "anthropic", Model: "claude-sonnet-4-5-20250929",
		Usage: usage, Cost: cost, Unpriced: !priced, Latency: 1600 * time.Millisecond, Status: 200,
	})
	metrics.ObserveRequest(accounting.RequestObservation{
		Operation: "chat", Provider: "anthropic", ModelGroup: "claude", Deployment: "anthropic-1",
		RequestModel: "claude", ResponseModel: "claude-sonnet-4-5-20250929", Status: 200,
		Duration: 1600 * time.Millisecond, Usage: usage, Cost: cost, Unpriced: !priced,
	})

	// Shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := recorder.Close(ctx); err != nil {
		fmt.Println(err)
	}
	totals, _ := recorder.Totals(ctx, "key-1")
	fmt.Printf("cost $%.6f, key total $%.6f over %d request\n", cost, totals.Spend, totals.Requests)
	// Output: cost $0.005673, key total $0.005673 over 1 request
}
