package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// policyCollector exports the policy package's counters at scrape time,
// so degraded operation (Redis bypassed, stale keys served, spend queued)
// is visible where operators look. pkg/policy stays free of Prometheus.
type policyCollector struct {
	auth    *policy.Authenticator
	limiter *policy.RedisLimiter // nil without Redis
}

var (
	descDegraded       = prometheus.NewDesc("tollgate_policy_degraded", "1 while this replica bypasses Redis for limits.", nil, nil)
	descRedisErrors    = prometheus.NewDesc("tollgate_policy_redis_errors_total", "Failed limiter calls to Redis.", nil, nil)
	descDegradedAdmits = prometheus.NewDesc("tollgate_policy_degraded_admissions_total", "Requests admitted on per-replica counters while Redis was unreachable.", nil, nil)
	descFailClosed     = prometheus.NewDesc("tollgate_policy_fail_closed_rejections_total", "Requests rejected with 503 in fail_closed mode.", nil, nil)
	descQueueLen       = prometheus.NewDesc("tollgate_policy_spend_queue_updates", "Spend updates and slot releases waiting for Redis.", nil, nil)
	descSpend          = prometheus.NewDesc("tollgate_policy_spend_updates_total", "Spend updates queued while Redis was unreachable, by outcome.", []string{"outcome"}, nil)
	descKeyLookups     = prometheus.NewDesc("tollgate_policy_key_lookups_total", "Key lookups past the static keys, by where they were answered.", []string{"source"}, nil)
	descKeyStoreErrors = prometheus.NewDesc("tollgate_policy_key_store_errors_total", "Failed key lookups in the store.", nil, nil)
	descInvalidations  = prometheus.NewDesc("tollgate_policy_key_invalidations_total", "Cached keys dropped by change messages from other replicas.", nil, nil)
)

func (c policyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDegraded, descRedisErrors, descDegradedAdmits, descFailClosed, descQueueLen, descSpend, descKeyLookups, descKeyStoreErrors, descInvalidations} {
		ch <- d
	}
}

func (c policyCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.auth.Stats()
	ch <- prometheus.MustNewConstMetric(descKeyLookups, prometheus.CounterValue, float64(a.CacheHits), "cache")
	ch <- prometheus.MustNewConstMetric(descKeyLookups, prometheus.CounterValue, float64(a.CacheMisses), "store")
	ch <- prometheus.MustNewConstMetric(descKeyLookups, prometheus.CounterValue, float64(a.StaleServed), "stale_cache")
	ch <- prometheus.MustNewConstMetric(descKeyStoreErrors, prometheus.CounterValue, float64(a.StoreErrors))
	ch <- prometheus.MustNewConstMetric(descInvalidations, prometheus.CounterValue, float64(a.Invalidations))
	var l policy.LimiterStats
	if c.limiter != nil {
		l = c.limiter.Stats()
	}
	degraded := 0.0
	if l.Degraded {
		degraded = 1
	}
	ch <- prometheus.MustNewConstMetric(descDegraded, prometheus.GaugeValue, degraded)
	ch <- prometheus.MustNewConstMetric(descRedisErrors, prometheus.CounterValue, float64(l.RedisErrors))
	ch <- prometheus.MustNewConstMetric(descDegradedAdmits, prometheus.CounterValue, float64(l.DegradedAdmits))
	ch <- prometheus.MustNewConstMetric(descFailClosed, prometheus.CounterValue, float64(l.FailClosedRejects))
	ch <- prometheus.MustNewConstMetric(descQueueLen, prometheus.GaugeValue, float64(l.QueueLen))
	ch <- prometheus.MustNewConstMetric(descSpend, prometheus.CounterValue, float64(l.SpendQueued), "queued")
	ch <- prometheus.MustNewConstMetric(descSpend, prometheus.CounterValue, float64(l.SpendFlushed), "flushed")
	ch <- prometheus.MustNewConstMetric(descSpend, prometheus.CounterValue, float64(l.SpendDropped), "dropped")
}
