package credentials

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Token lifetimes and retry pacing.
const (
	defaultRefreshBefore = 5 * time.Minute
	// expirySkew treats a token as expired slightly early, so that a
	// request does not reach the provider with a token that lapses on
	// the way.
	expirySkew = 10 * time.Second
	// minRetry and maxRetry bound the backoff after failed refreshes.
	minRetry = time.Second
	maxRetry = time.Minute
	// mintTimeout bounds one token request made in the background.
	mintTimeout = 30 * time.Second
)

// tokenCache holds one short-lived token: the first get mints it, later
// gets return it at once and, within refreshBefore of its expiry, start
// one background refresh, retried with backoff on failure while the old
// token stays valid. It is safe for concurrent use.
type tokenCache struct {
	// name starts errors and log lines ("azure token").
	name          string
	mint          func(ctx context.Context) (token string, expiresIn time.Duration, err error)
	refreshBefore time.Duration
	now           func() time.Time
	log           *slog.Logger

	mu       sync.Mutex
	token    string
	expiry   time.Time
	inflight chan struct{} // closed when the running refresh ends; nil when none
	lastErr  error
	failures int
	nextTry  time.Time
}

// newTokenCache applies the defaults: 5 minutes ahead, time.Now, no logs.
func newTokenCache(name string, mint func(context.Context) (string, time.Duration, error), refreshBefore time.Duration, now func() time.Time, log *slog.Logger) *tokenCache {
	if refreshBefore <= 0 {
		refreshBefore = defaultRefreshBefore
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &tokenCache{name: name, mint: mint, refreshBefore: refreshBefore, now: now, log: log}
}

func (c *tokenCache) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *tokenCache) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	now := c.now()
	if c.valid(now) {
		tok := c.token
		if !now.Before(c.expiry.Add(-c.refreshBefore)) && c.inflight == nil && !now.Before(c.nextTry) {
			c.startRefresh()
		}
		c.mu.Unlock()
		return tok, nil
	}
	if c.inflight == nil {
		if c.lastErr != nil && now.Before(c.nextTry) {
			// Fail fast while backing off, rather than send every
			// request to a token endpoint that just failed.
			err := c.lastErr
			c.mu.Unlock()
			return "", err
		}
		c.startRefresh()
	}
	done := c.inflight
	c.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w", c.name, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid(c.now()) {
		return c.token, nil
	}
	if c.lastErr != nil {
		return "", c.lastErr
	}
	return "", fmt.Errorf("%s: endpoint returned an expired token", c.name)
}

// valid reports whether the cached token may still be sent. c.mu is held.
func (c *tokenCache) valid(now time.Time) bool {
	return c.token != "" && now.Before(c.expiry.Add(-expirySkew))
}

// startRefresh mints a token in the background. c.mu is held. The refresh
// outlives the request that noticed the need, so it has its own deadline
// instead of the request's context.
func (c *tokenCache) startRefresh() {
	done := make(chan struct{})
	c.inflight = done
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), mintTimeout)
		tok, ttl, err := c.mint(ctx)
		cancel()

		c.mu.Lock()
		defer c.mu.Unlock()
		now := c.now()
		if err != nil {
			c.failures++
			c.lastErr = err
			c.nextTry = now.Add(retryDelay(c.failures))
			if c.valid(now) {
				c.log.Warn(c.name+" refresh failed; the current token stays in use",
					slog.Time("expiry", c.expiry), slog.Time("next_try", c.nextTry), slog.String("error", err.Error()))
			}
		} else {
			c.token, c.expiry = tok, now.Add(ttl)
			c.lastErr, c.failures, c.nextTry = nil, 0, time.Time{}
		}
		c.inflight = nil
		close(done)
	}()
}

// retryDelay is the wait after the n-th failure in a row: doubling from
// minRetry, capped at maxRetry.
func retryDelay(n int) time.Duration {
	d := minRetry
	for i := 1; i < n && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}
