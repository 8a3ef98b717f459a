// Package accounting turns a request's token usage into cost, spend records
// and metrics.
//
// The ext_proc server uses it at the end of every request:
//
//   - a PriceTable (built at config load, immutable, lock-free lookups)
//     prices usage with PriceTable.Cost; a model missing from the table
//     costs 0 but is reported as unpriced;
//   - EstimateTokens and EstimatePromptTokens count tokens offline when a
//     provider reports no usage or a stream is cut;
//   - a Recorder takes one Record per request without blocking, writes
//     batches to a Sink (an in-memory ring, or Redis Streams) and keeps
//     running spend totals per key and team;
//   - Metrics exports OpenTelemetry GenAI and Tollgate metrics to
//     Prometheus, with label values drawn only from bounded sets.
//
// Nothing here decides routing or enforces limits.
package accounting
