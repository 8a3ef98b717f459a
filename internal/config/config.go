// Package config reads Tollgate's YAML config file: LiteLLM's config.yaml
// shape (model_list, router_settings, general_settings) plus Tollgate's own
// sections (server, keys). Decoding is strict: unknown fields are errors.
// Build reports every problem with its path and turns a valid file into
// the immutable runtime values the ext_proc server uses.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

// File is the config file as written.
type File struct {
	// Server holds listen addresses and limits. Zero values take defaults.
	Server Server `yaml:"server"`
	// ModelList are the deployments (LiteLLM's model_list).
	ModelList []ModelEntry `yaml:"model_list"`
	// RouterSettings as in LiteLLM (aliases, fallbacks).
	RouterSettings RouterSettings `yaml:"router_settings"`
	// LiteLLMSettings as in LiteLLM; fallbacks here merge with
	// router_settings, which win.
	LiteLLMSettings LiteLLMSettings `yaml:"litellm_settings"`
	// GeneralSettings as in LiteLLM (master key).
	GeneralSettings GeneralSettings `yaml:"general_settings"`
	// Keys are static virtual keys; they work without any store.
	Keys []KeyEntry `yaml:"keys"`
	// Accounting configures prices and spend records.
	Accounting Accounting `yaml:"accounting"`
	// Redis is the state shared by replicas. Zero: none; everything lives in
	// each replica's memory.
	Redis Redis `yaml:"redis"`
	// Policy tunes keys and limits.
	Policy Policy `yaml:"policy"`
	// Tracing exports one OpenTelemetry span per request; absent or
	// without otlp_endpoint, tracing is off.
	Tracing Tracing `yaml:"tracing"`
}

// Tracing configures the OTLP/gRPC span exporter.
type Tracing struct {
	// OTLPEndpoint is the collector's host:port; empty turns tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Insecure sends spans without TLS.
	Insecure bool `yaml:"insecure"`
	// Headers are sent with every export (e.g. an authorization token);
	// values may be secret references.
	Headers map[string]string `yaml:"headers"`
	// ServiceName is the resource's service.name; default tollgate.
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of requests traced when the client sent no
	// sampled trace context; default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Timeout bounds one export; default 10s.
	Timeout Duration `yaml:"timeout"`
}

// Policy tunes virtual keys and limits.
type Policy struct {
	// OnRedisFailure decides what limits do while Redis is unreachable:
	// degrade (default: per-replica counters, said in a log line and a
	// metric) or fail_closed (503 for requests that have limits).
	OnRedisFailure string `yaml:"on_redis_failure"`
	// KeyCacheTTL is how long a replica trusts a looked-up key before
	// fetching it again; revocations reach replicas at once over pub/sub,
	// so this only bounds staleness when pub/sub is down. Default 10s.
	KeyCacheTTL Duration `yaml:"key_cache_ttl"`
	// ParallelSlotLease is how long a max_parallel_requests slot is held
	// if its replica dies mid-request. Default 10m.
	ParallelSlotLease Duration `yaml:"parallel_slot_lease"`
	// RedisPrefix starts every policy key in Redis. Default "tg".
	RedisPrefix string `yaml:"redis_prefix"`
}

// GroupLimits are a model group's rate limits, shared by every key.
type GroupLimits struct {
	RPMLimit            int64 `yaml:"rpm_limit"`
	TPMLimit            int64 `yaml:"tpm_limit"`
	MaxParallelRequests int64 `yaml:"max_parallel_requests"`
}

// Accounting configures prices and spend records.
type Accounting struct {
	// PricesFile is a price file in LiteLLM's
	// model_prices_and_context_window.json format, added to the built-in
	// prices (its entries win). Empty: built-in prices only.
	PricesFile string `yaml:"prices_file"`
	// Spend tunes the asynchronous spend-record writer.
	Spend Spend `yaml:"spend"`
}

// Spend tunes the spend-record writer; zero values take its defaults.
type Spend struct {
	// QueueSize bounds records waiting to be written; past it records are
	// dropped and counted, never blocking a request. Default 10000.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most records per write. Default 500.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits for a batch. Default 1s.
	FlushInterval Duration `yaml:"flush_interval"`
	// MaxPending bounds records held while Redis is down. Default 50000.
	MaxPending int `yaml:"max_pending"`
	// MemoryLogs is the size of the in-memory ring used without Redis.
	// Default 10000.
	MemoryLogs int `yaml:"memory_logs"`
	// RedisStream is the Redis Stream key of spend logs. Default
	// tollgate:spend:logs.
	RedisStream string `yaml:"redis_stream"`
	// RedisStreamMaxLen caps the stream (approximately). Default 1000000.
	RedisStreamMaxLen int64 `yaml:"redis_stream_max_len"`
}

// Redis locates the Redis shared by replicas: one address for a standalone
// server, or cluster_addresses for Redis Cluster.
type Redis struct {
	Address          string   `yaml:"address"`
	ClusterAddresses []string `yaml:"cluster_addresses"`
	Username         string   `yaml:"username"`
	// Password is a secret reference (os.environ/NAME or file:PATH).
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
}

// Enabled reports whether a Redis is configured.
func (r Redis) Enabled() bool { return r.Address != "" || len(r.ClusterAddresses) > 0 }

// Server configures the ext_proc process.
type Server struct {
	// GRPCAddress is host:port or unix:///path. Default 127.0.0.1:50051.
	GRPCAddress string `yaml:"grpc_address"`
	// AdminAddress is the admin HTTP host:port (health, metrics).
	// Default 127.0.0.1:9080.
	AdminAddress string `yaml:"admin_address"`
	// MaxRequestBodyBytes must match Envoy's buffer limit; larger bodies
	// get 413. Default 10 MiB.
	MaxRequestBodyBytes int64 `yaml:"max_request_body_bytes"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight streams.
	// Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogBodies logs request and response bodies at debug level. Off by
	// default: bodies hold user content.
	LogBodies bool `yaml:"log_bodies"`
	// Pprof serves Go's /debug/pprof on the admin port, for profiling under
	// load. Off by default: profiles reveal internals.
	Pprof bool `yaml:"pprof"`
}

// ModelEntry is one deployment.
type ModelEntry struct {
	// ModelName is the public model group name.
	ModelName     string        `yaml:"model_name"`
	LiteLLMParams LiteLLMParams `yaml:"litellm_params"`
	ModelInfo     ModelInfo     `yaml:"model_info"`
}

// LiteLLMParams are the provider parameters of a deployment.
type LiteLLMParams struct {
	// Model is "<provider>/<provider model>", e.g. "anthropic/claude-sonnet-4-5".
	Model string `yaml:"model"`
	// CustomLLMProvider overrides the provider prefix of Model.
	CustomLLMProvider string `yaml:"custom_llm_provider"`
	// APIBase is the provider base URL; empty takes the provider default.
	APIBase string `yaml:"api_base"`
	// APIKey is a secret reference (os.environ/NAME or file:PATH) or a literal.
	APIKey string `yaml:"api_key"`
	// MaxTokens is sent when the client gives none and the provider needs one.
	MaxTokens int64 `yaml:"max_tokens"`
	// APIVersion is Azure's api-version, or Vertex AI's v1 or v1beta1.
	APIVersion string `yaml:"api_version"`
	// DropParams drops parameters the provider cannot take instead of
	// refusing the request; unset follows litellm_settings.drop_params.
	DropParams *bool `yaml:"drop_params"`
	// AWS settings of bedrock deployments. The keys are secret references;
	// without them AWS's default chain (environment, profile, web
	// identity, instance role) is used.
	AWSRegionName      string `yaml:"aws_region_name"`
	AWSAccessKeyID     string `yaml:"aws_access_key_id"`
	AWSSecretAccessKey string `yaml:"aws_secret_access_key"`
	AWSSessionToken    string `yaml:"aws_session_token"`
	AWSProfileName     string `yaml:"aws_profile_name"`
	// Vertex AI settings. VertexCredentials is a service-account key (a
	// path, inline JSON, or a secret reference); empty means Google's
	// Application Default Credentials. VertexLocation defaults to
	// us-central1; VertexProject to the credentials' project.
	VertexProject     string `yaml:"vertex_project"`
	VertexLocation    string `yaml:"vertex_location"`
	VertexCredentials string `yaml:"vertex_credentials"`
	// Azure Entra ID settings of azure deployments, instead of api_key.
	// AzureADToken is a fixed bearer token; TenantID, ClientID and
	// ClientSecret (all three together) have a token minted by the client
	// credentials grant for https://cognitiveservices.azure.com/.default
	// and refreshed before it expires. All are secret references or
	// literals; the two ways are mutually exclusive. Empty means api_key.
	AzureADToken string `yaml:"azure_ad_token"`
	TenantID     string `yaml:"tenant_id"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// AzureAuthorityHost is the Entra ID login host the client credentials
	// grant asks, <host>/<tenant>/oauth2/v2.0/token, for sovereign clouds
	// (e.g. https://login.microsoftonline.us). An absolute http(s) URL, not
	// a secret reference; empty means https://login.microsoftonline.com.
	AzureAuthorityHost string `yaml:"azure_authority_host"`
	// RPM, TPM and Weight are LiteLLM's simple-shuffle inputs; the xDS
	// server derives Envoy endpoint weights from them. RPM and TPM are hard
	// limits too under router_settings.enable_pre_call_checks or a
	// usage-based routing_strategy. Order is LiteLLM's priority within the
	// group.
	RPM    int64   `yaml:"rpm"`
	TPM    int64   `yaml:"tpm"`
	Weight float64 `yaml:"weight"`
	Order  int     `yaml:"order"`
	// MaxParallelRequests is always a hard limit on this deployment's
	// requests in flight; zero means none.
	MaxParallelRequests int64 `yaml:"max_parallel_requests"`
	// Prices in USD per token, overriding the price table for this
	// deployment (LiteLLM's names). Unset keeps the table's price.
	InputCostPerToken           *float64 `yaml:"input_cost_per_token"`
	OutputCostPerToken          *float64 `yaml:"output_cost_per_token"`
	CacheReadInputTokenCost     *float64 `yaml:"cache_read_input_token_cost"`
	CacheCreationInputTokenCost *float64 `yaml:"cache_creation_input_token_cost"`
	OutputCostPerReasoningToken *float64 `yaml:"output_cost_per_reasoning_token"`
	// InputCostPerRequest is a flat USD fee per request (search fees).
	InputCostPerRequest *float64 `yaml:"input_cost_per_request"`
}

// ModelInfo carries the deployment id and model facts.
type ModelInfo struct {
	// ID is the stable deployment id; derived from the entry when empty.
	ID string `yaml:"id"`
	// MaxInputTokens overrides the price table's context window.
	MaxInputTokens int64 `yaml:"max_input_tokens"`
}

// RouterSettings as in LiteLLM.
type RouterSettings struct {
	ModelGroupAlias map[string]string     `yaml:"model_group_alias"`
	Fallbacks       []map[string][]string `yaml:"fallbacks"`
	// ModelGroupLimits are each group's limits across all keys.
	ModelGroupLimits map[string]GroupLimits `yaml:"model_group_limits"`
	// EnablePreCallChecks and the usage-based RoutingStrategy values make
	// deployments' rpm and tpm hard limits, as LiteLLM's pre-call RPM check
	// and usage-based routing skip deployments at their limit. Otherwise
	// rpm and tpm are weights only (simple-shuffle, the default).
	EnablePreCallChecks bool   `yaml:"enable_pre_call_checks"`
	RoutingStrategy     string `yaml:"routing_strategy"`
}

// Routing strategies: LiteLLM's names Tollgate implements.
const (
	strategySimpleShuffle = "simple-shuffle"
	strategyUsageBased    = "usage-based-routing"
	strategyUsageBasedV2  = "usage-based-routing-v2"
)

// hardRateLimits reports whether deployments' rpm and tpm are hard limits.
func (r RouterSettings) hardRateLimits() bool {
	return r.EnablePreCallChecks || r.RoutingStrategy == strategyUsageBased || r.RoutingStrategy == strategyUsageBasedV2
}

// LiteLLMSettings as in LiteLLM.
type LiteLLMSettings struct {
	Fallbacks  []map[string][]string `yaml:"fallbacks"`
	DropParams bool                  `yaml:"drop_params"`
}

// GeneralSettings as in LiteLLM.
type GeneralSettings struct {
	// MasterKey may call every model; a secret reference or a literal.
	MasterKey string `yaml:"master_key"`
}

// KeyEntry is a static virtual key.
type KeyEntry struct {
	// ID names the key in logs and spend records; derived when empty.
	ID string `yaml:"id"`
	// Key is a secret reference (os.environ/NAME or file:PATH) or a literal.
	Key string `yaml:"key"`
	// Models the key may call; empty means all.
	Models []string `yaml:"models"`
	// Limits, per minute and in flight; zero means none.
	RPMLimit            int64 `yaml:"rpm_limit"`
	TPMLimit            int64 `yaml:"tpm_limit"`
	MaxParallelRequests int64 `yaml:"max_parallel_requests"`
	// MaxBudget in USD rejects requests once spent in the budget window;
	// SoftBudget only alerts. Unset means none.
	MaxBudget  *float64 `yaml:"max_budget"`
	SoftBudget *float64 `yaml:"soft_budget"`
	// BudgetDuration resets spend: daily, weekly, monthly, or like 30d or
	// 12h. Empty: spend never resets.
	BudgetDuration string `yaml:"budget_duration"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Defaults applied by Load.
const (
	DefaultGRPCAddress         = "127.0.0.1:50051"
	DefaultAdminAddress        = "127.0.0.1:9080"
	DefaultMaxRequestBodyBytes = 10 << 20
	DefaultShutdownTimeout     = 30 * time.Second
)

//go:embed default.yaml
var defaultConfig []byte

// Default returns the embedded demo config: fake providers on localhost
// and a demo key, so the gateway runs with no real provider keys.
func Default() []byte { return bytes.Clone(defaultConfig) }

// Parse decodes a config strictly and applies defaults. It does not
// validate; Build does.
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	f.applyDefaults()
	return &f, nil
}

// Load reads, decodes, validates and builds a config file. An empty path
// loads the embedded default.
func Load(path string, env func(string) (string, bool)) (*Runtime, error) {
	data := Default()
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	return FromBytes(data, env)
}

// FromBytes decodes, validates and builds a config held in memory.
func FromBytes(data []byte, env func(string) (string, bool)) (*Runtime, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	rt, err := f.Build(env)
	if err != nil {
		return nil, fmt.Errorf("invalid config:\n%w", err)
	}
	return rt, nil
}

func (f *File) applyDefaults() {
	s := &f.Server
	if s.GRPCAddress == "" {
		s.GRPCAddress = DefaultGRPCAddress
	}
	if s.AdminAddress == "" {
		s.AdminAddress = DefaultAdminAddress
	}
	if s.MaxRequestBodyBytes == 0 {
		s.MaxRequestBodyBytes = DefaultMaxRequestBodyBytes
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
}

// validate reports every field problem in the file, each with its path. env
// looks up environment variables for os.environ/ references.
func (f *File) validate(env func(string) (string, bool)) error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if f.Server.MaxRequestBodyBytes < 0 {
		add("server.max_request_body_bytes", "must be positive")
	}
	if f.Server.ShutdownTimeout < 0 {
		add("server.shutdown_timeout", "must not be negative")
	}
	switch f.Server.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("server.log_level", "%q is not one of debug, info, warn, error", f.Server.LogLevel)
	}
	if len(f.ModelList) == 0 {
		add("model_list", "at least one deployment is required")
	}
	for i, m := range f.ModelList {
		p := fmt.Sprintf("model_list[%d]", i)
		if m.ModelName == "" {
			add(p+".model_name", "required")
		}
		if _, _, err := m.provider(); err != nil {
			add(p+".litellm_params.model", "%v", err)
		}
		if m.LiteLLMParams.APIBase != "" {
			if _, err := parseBase(m.LiteLLMParams.APIBase); err != nil {
				add(p+".litellm_params.api_base", "%v", err)
			}
		}
		if _, err := resolveSecret(m.LiteLLMParams.APIKey, env); err != nil {
			add(p+".litellm_params.api_key", "%v", err)
		}
		if err := m.validateAzureAuth(env); err != nil {
			add(p+".litellm_params", "%v", err)
		}
		if m.LiteLLMParams.MaxTokens < 0 {
			add(p+".litellm_params.max_tokens", "must not be negative")
		}
		if w := m.LiteLLMParams.Weight; w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			add(p+".litellm_params.weight", "must be a finite number, not negative")
		}
		if m.LiteLLMParams.RPM < 0 || m.LiteLLMParams.TPM < 0 || m.LiteLLMParams.Order < 0 {
			add(p+".litellm_params", "rpm, tpm and order must not be negative")
		}
		if m.LiteLLMParams.MaxParallelRequests < 0 {
			add(p+".litellm_params.max_parallel_requests", "must not be negative")
		}
		for name, v := range m.LiteLLMParams.prices() {
			if v != nil && (*v < 0 || math.IsNaN(*v) || math.IsInf(*v, 0)) {
				add(p+".litellm_params."+name, "must be a finite price, not negative")
			}
		}
		if m.ModelInfo.MaxInputTokens < 0 {
			add(p+".model_info.max_input_tokens", "must not be negative")
		}
	}
	if _, err := resolveSecret(f.GeneralSettings.MasterKey, env); err != nil {
		add("general_settings.master_key", "%v", err)
	}
	if _, err := resolveSecret(f.Redis.Password, env); err != nil {
		add("redis.password", "%v", err)
	}
	if f.Redis.Address != "" && len(f.Redis.ClusterAddresses) > 0 {
		add("redis", "set address (standalone) or cluster_addresses (Redis Cluster), not both")
	}
	if f.Redis.DB < 0 {
		add("redis.db", "must not be negative")
	}
	sp := f.Accounting.Spend
	if sp.QueueSize < 0 || sp.BatchSize < 0 || sp.MaxPending < 0 || sp.MemoryLogs < 0 || sp.RedisStreamMaxLen < 0 || sp.FlushInterval < 0 {
		add("accounting.spend", "sizes and intervals must not be negative")
	}
	switch f.Policy.OnRedisFailure {
	case "", string(policy.FailDegrade), string(policy.FailClosed):
	default:
		add("policy.on_redis_failure", "%q is not degrade or fail_closed", f.Policy.OnRedisFailure)
	}
	if f.Policy.KeyCacheTTL < 0 || f.Policy.ParallelSlotLease < 0 {
		add("policy", "durations must not be negative")
	}
	switch rs := f.RouterSettings.RoutingStrategy; rs {
	case "", strategySimpleShuffle, strategyUsageBased, strategyUsageBasedV2:
	case "least-busy", "latency-based-routing", "cost-based-routing":
		add("router_settings.routing_strategy", "%q is a LiteLLM strategy Tollgate does not implement; use %s (Envoy weights), %s or %s (hard rpm/tpm limits per deployment)",
			rs, strategySimpleShuffle, strategyUsageBased, strategyUsageBasedV2)
	default:
		add("router_settings.routing_strategy", "%q is not a routing strategy; use %s, %s or %s", rs, strategySimpleShuffle, strategyUsageBased, strategyUsageBasedV2)
	}
	for group, l := range f.RouterSettings.ModelGroupLimits {
		if l.RPMLimit < 0 || l.TPMLimit < 0 || l.MaxParallelRequests < 0 {
			add("router_settings.model_group_limits."+group, "limits must not be negative")
		}
	}
	if f.Tracing.OTLPEndpoint != "" {
		if _, err := f.Tracing.config(env); err != nil {
			add("tracing", "%v", err)
		}
	}
	if len(f.Keys) == 0 && f.GeneralSettings.MasterKey == "" {
		add("keys", "at least one key (or general_settings.master_key) is required: every request must authenticate")
	}
	for i, k := range f.Keys {
		p := fmt.Sprintf("keys[%d]", i)
		if k.Key == "" {
			add(p+".key", "required")
		} else if s, err := resolveSecret(k.Key, env); err != nil {
			add(p+".key", "%v", err)
		} else if s == "" {
			add(p+".key", "resolves to an empty secret")
		}
		if _, err := k.budget(); err != nil {
			add(p, "%v", err)
		}
		if k.RPMLimit < 0 || k.TPMLimit < 0 || k.MaxParallelRequests < 0 {
			add(p, "rpm_limit, tpm_limit and max_parallel_requests must not be negative")
		}
	}
	return errors.Join(errs...)
}

// resolveSecret reads a secret reference: "os.environ/NAME" from the
// environment, "file:PATH" from a file (trailing newline dropped), anything
// else is the literal value.
func resolveSecret(ref string, env func(string) (string, bool)) (string, error) {
	switch {
	case strings.HasPrefix(ref, "os.environ/"):
		name := strings.TrimPrefix(ref, "os.environ/")
		v, ok := env(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		b, err := os.ReadFile(strings.TrimPrefix(ref, "file:"))
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return ref, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must not carry a query or fragment", raw)
	}
	return u, nil
}

// prices names the per-token price overrides, for validation.
func (p LiteLLMParams) prices() map[string]*float64 {
	return map[string]*float64{
		"input_cost_per_token":            p.InputCostPerToken,
		"output_cost_per_token":           p.OutputCostPerToken,
		"cache_read_input_token_cost":     p.CacheReadInputTokenCost,
		"cache_creation_input_token_cost": p.CacheCreationInputTokenCost,
		"output_cost_per_reasoning_token": p.OutputCostPerReasoningToken,
		"input_cost_per_request":          p.InputCostPerRequest,
	}
}

// budget is the key's budget settings.
func (k KeyEntry) budget() (policy.Budget, error) {
	d, err := policy.ParseBudgetDuration(k.BudgetDuration)
	if err != nil {
		return policy.Budget{}, fmt.Errorf("budget_duration: %w", err)
	}
	for name, v := range map[string]*float64{"max_budget": k.MaxBudget, "soft_budget": k.SoftBudget} {
		if v != nil && (*v < 0 || math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return policy.Budget{}, fmt.Errorf("%s must be a finite amount, not negative", name)
		}
	}
	return policy.Budget{Max: k.MaxBudget, Soft: k.SoftBudget, Duration: d}, nil
}

// config is the tracer's configuration, secrets resolved.
func (t Tracing) config(env func(string) (string, bool)) (tracing.Config, error) {
	c := tracing.Config{Endpoint: t.OTLPEndpoint, Insecure: t.Insecure, ServiceName: t.ServiceName,
		SampleRatio: 1, Timeout: time.Duration(t.Timeout)}
	if t.SampleRatio != nil {
		c.SampleRatio = *t.SampleRatio
	}
	if len(t.Headers) > 0 {
		c.Headers = make(map[string]string, len(t.Headers))
		for k, ref := range t.Headers {
			v, err := resolveSecret(ref, env)
			if err != nil {
				return c, fmt.Errorf("headers.%s: %w", k, err)
			}
			c.Headers[k] = v
		}
	}
	return c, c.Validate()
}
