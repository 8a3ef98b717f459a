package accounting

import (
	"time"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Record is one request's spend entry.
type Record struct {
	// Time is when the request started.
	Time      time.Time
	RequestID string
	// KeyID is the virtual key's id, never the key.
	KeyID      string
	Team       string
	User       string
	ModelGroup string
	Deployment string
	Provider   string
	// Model is the provider model that answered.
	Model string
	Usage transform.Usage
	// Cost is in USD.
	Cost float64
	// Estimated marks Usage as counted by EstimateTokens rather than
	// reported by the provider (no usage in the response, or a cut stream).
	Estimated bool
	// Unpriced marks a request whose model has no known price; Cost is
	// then 0.
	Unpriced bool
	// Latency is the whole request as the client saw it.
	Latency time.Duration
	// TimeToFirstToken is the time to the first streamed content; zero
	// when not streamed.
	TimeToFirstToken time.Duration
	// Status is the HTTP status returned to the client.
	Status int
	// ErrorType is the OpenAI error type of a failed request.
	ErrorType string
	CacheHit  bool
	Stream    bool
}

// Failed reports whether the request did not succeed.
func (r *Record) Failed() bool { return r.Status >= 400 || r.ErrorType != "" }

// SpendLog is a Record as /spend/logs returns it and as the Redis sink
// stores it: LiteLLM's spend-log field names where LiteLLM has one, so
// existing spend tooling can read it, and Tollgate's extra fields under
// metadata.
type SpendLog struct {
	RequestID string `json:"request_id"`
	// APIKey holds the key id (LiteLLM puts the key's hash here); the key
	// itself is never stored.
	APIKey              string    `json:"api_key"`
	TeamID              string    `json:"team_id"`
	User                string    `json:"user"`
	Model               string    `json:"model"`
	ModelGroup          string    `json:"model_group"`
	ModelID             string    `json:"model_id"`
	CustomLLMProvider   string    `json:"custom_llm_provider"`
	Spend               float64   `json:"spend"`
	PromptTokens        int64     `json:"prompt_tokens"`
	CompletionTokens    int64     `json:"completion_tokens"`
	TotalTokens         int64     `json:"total_tokens"`
	StartTime           time.Time `json:"startTime"`
	EndTime             time.Time `json:"endTime"`
	CompletionStartTime time.Time `json:"completionStartTime,omitzero"`
	CacheHit            bool      `json:"cache_hit"`
	// Status is "success" or "failure", as in LiteLLM.
	Status   string          `json:"status"`
	Metadata SpendLogDetails `json:"metadata"`
}

// SpendLogDetails are the Tollgate fields of a SpendLog.
type SpendLogDetails struct {
	StatusCode          int    `json:"status_code"`
	ErrorType           string `json:"error_type,omitempty"`
	Stream              bool   `json:"stream"`
	Estimated           bool   `json:"usage_estimated"`
	Unpriced            bool   `json:"unpriced"`
	CachedTokens        int64  `json:"cached_tokens"`
	CacheCreationTokens int64  `json:"cache_creation_tokens"`
	ReasoningTokens     int64  `json:"reasoning_tokens"`
	WebSearches         int64  `json:"web_search_requests,omitempty"`
}

// SpendLog converts the record to its stored and served form.
func (r *Record) SpendLog() SpendLog {
	status := "success"
	if r.Failed() {
		status = "failure"
	}
	start := r.Time.UTC()
	l := SpendLog{
		RequestID:         r.RequestID,
		APIKey:            r.KeyID,
		TeamID:            r.Team,
		User:              r.User,
		Model:             r.Model,
		ModelGroup:        r.ModelGroup,
		ModelID:           r.Deployment,
		CustomLLMProvider: r.Provider,
		Spend:             r.Cost,
		PromptTokens:      r.Usage.InputTokens,
		CompletionTokens:  r.Usage.OutputTokens,
		TotalTokens:       r.Usage.TotalTokens(),
		StartTime:         start,
		EndTime:           start.Add(r.Latency),
		CacheHit:          r.CacheHit,
		Status:            status,
		Metadata: SpendLogDetails{
			StatusCode:          r.Status,
			ErrorType:           r.ErrorType,
			Stream:              r.Stream,
			Estimated:           r.Estimated,
			Unpriced:            r.Unpriced,
			CachedTokens:        r.Usage.CachedInputTokens,
			CacheCreationTokens: r.Usage.CacheCreationInputTokens,
			ReasoningTokens:     r.Usage.ReasoningTokens,
			WebSearches:         r.Usage.WebSearches,
		},
	}
	if r.TimeToFirstToken > 0 {
		l.CompletionStartTime = start.Add(r.TimeToFirstToken)
	}
	return l
}

// Record converts a stored spend log back into a Record.
func (l *SpendLog) Record() Record {
	r := Record{
		Time:       l.StartTime,
		RequestID:  l.RequestID,
		KeyID:      l.APIKey,
		Team:       l.TeamID,
		User:       l.User,
		ModelGroup: l.ModelGroup,
		Deployment: l.ModelID,
		Provider:   l.CustomLLMProvider,
		Model:      l.Model,
		Usage: transform.Usage{
			InputTokens:              l.PromptTokens,
			OutputTokens:             l.CompletionTokens,
			CachedInputTokens:        l.Metadata.CachedTokens,
			CacheCreationInputTokens: l.Metadata.CacheCreationTokens,
			ReasoningTokens:          l.Metadata.ReasoningTokens,
			WebSearches:              l.Metadata.WebSearches,
		},
		Cost:      l.Spend,
		Estimated: l.Metadata.Estimated,
		Unpriced:  l.Metadata.Unpriced,
		Latency:   l.EndTime.Sub(l.StartTime),
		Status:    l.Metadata.StatusCode,
		ErrorType: l.Metadata.ErrorType,
		CacheHit:  l.CacheHit,
		Stream:    l.Metadata.Stream,
	}
	if !l.CompletionStartTime.IsZero() {
		r.TimeToFirstToken = l.CompletionStartTime.Sub(l.StartTime)
	}
	return r
}

// Scope is what a running total is kept for.
type Scope uint8

// Scopes of running totals.
const (
	ScopeKey Scope = iota
	ScopeTeam
)

func (s Scope) String() string {
	if s == ScopeTeam {
		return "team"
	}
	return "key"
}

// Totals are running spend totals of a key or team.
type Totals struct {
	// Spend is in USD.
	Spend        float64
	Requests     int64
	InputTokens  int64
	OutputTokens int64
}

func (t *Totals) add(r *Record) {
	t.Spend += r.Cost
	t.Requests++
	t.InputTokens += r.Usage.InputTokens
	t.OutputTokens += r.Usage.OutputTokens
}

func (t *Totals) merge(o Totals) {
	t.Spend += o.Spend
	t.Requests += o.Requests
	t.InputTokens += o.InputTokens
	t.OutputTokens += o.OutputTokens
}

// TotalsKey names one running total.
type TotalsKey struct {
	Scope Scope
	ID    string
}

// Filter selects spend records. Zero fields do not filter.
type Filter struct {
	KeyID      string
	Team       string
	ModelGroup string
	// From and To bound Record.Time: From <= Time < To.
	From, To time.Time
	// Limit is the most records returned, newest first; 0 means
	// DefaultQueryLimit, and values above MaxQueryLimit are lowered to it.
	Limit int
}

// Query limits.
const (
	DefaultQueryLimit = 100
	MaxQueryLimit     = 1000
)

func (f *Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultQueryLimit
	case f.Limit > MaxQueryLimit:
		return MaxQueryLimit
	}
	return f.Limit
}

// match reports whether r passes every field of f but Limit.
func (f *Filter) match(r *Record) bool {
	return (f.KeyID == "" || r.KeyID == f.KeyID) &&
		(f.Team == "" || r.Team == f.Team) &&
		(f.ModelGroup == "" || r.ModelGroup == f.ModelGroup) &&
		(f.From.IsZero() || !r.Time.Before(f.From)) &&
		(f.To.IsZero() || r.Time.Before(f.To))
}
