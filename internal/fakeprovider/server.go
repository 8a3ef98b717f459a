// Package fakeprovider runs fake LLM provider APIs on loopback HTTP servers,
// so Tollgate can be tested end to end, benchmarked and demonstrated without
// real providers or keys.
//
// Each fake validates requests against the provider's real schema (the
// official Go SDK types plus the rules the real API enforces), answers in the
// provider's exact wire format (JSON or SSE), and reports errors in the
// provider's own error shape. Replies and token counts are deterministic:
// the reply is "echo: <last user text>" unless configured, and tokens are
// counted with [CountTokens], so tests can assert exact numbers.
//
// Failures are scripted per request either programmatically
// ([Server.Enqueue], [Server.Script]) or, for requests that pass through a
// gateway, with x-fake-* request headers (see [Step] and the Header*
// constants).
//
// Every provider lives in its own file (openai.go, anthropic.go) and plugs
// into the common server through the provider interface.
package fakeprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Kind names a fake provider API.
type Kind string

// The provider APIs this package fakes.
const (
	// OpenAI serves POST /v1/chat/completions and POST /chat/completions,
	// and the legacy POST /v1/completions and /completions, also at
	// DeepSeek's /beta/completions (completions.go).
	OpenAI Kind = "openai"
	// Anthropic serves POST /v1/messages.
	Anthropic Kind = "anthropic"
	// Gemini serves Google's generateContent on AI Studio and Vertex AI
	// paths (see gemini.go).
	Gemini Kind = "google"
	// Bedrock serves POST /model/{modelId}/converse and /converse-stream
	// (see bedrock.go).
	Bedrock Kind = "bedrock"
)

// maxBodyBytes bounds request bodies; larger ones get the provider's 413.
const maxBodyBytes = 32 << 20

// Option configures a [Server].
type Option func(*config)

type config struct {
	addr          string
	apiKey        string
	reply         string
	contextWindow int
	models        []string
	entraToken    string
	clock         func() time.Time
	logger        *slog.Logger
}

// WithAddr sets the listen address. The zero value is "127.0.0.1:0", a free
// loopback port.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithAPIKey makes the server require this key (Authorization: Bearer for
// OpenAI, x-api-key for Anthropic). Without it any key, or none, is accepted.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithReply sets a fixed reply text instead of "echo: <last user text>".
func WithReply(text string) Option { return func(c *config) { c.reply = text } }

// WithContextWindow rejects requests whose input exceeds n tokens with the
// provider's "context too long" error. Zero means unlimited.
func WithContextWindow(n int) Option { return func(c *config) { c.contextWindow = n } }

// WithModels restricts the accepted model names; others get the provider's
// 404 model-not-found error. Without it every model name is accepted.
func WithModels(models ...string) Option {
	return func(c *config) { c.models = append(c.models, models...) }
}

// WithClock sets the clock used for "created" timestamps. Nil means time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithLogger logs one line per request. Nil (the default) logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Request is a request as the server received it.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Record is a received request and what the server answered.
type Record struct {
	Request
	// Status is the HTTP status sent; it is set before the first response
	// byte is written, so a client that has seen the response sees it too.
	Status int
	// Usage is the usage reported in a successful reply, zero otherwise.
	Usage Usage
}

// Server is a running fake provider. It is safe for concurrent use.
type Server struct {
	kind Kind
	prov provider
	cfg  config
	ln   net.Listener
	hs   *http.Server
	seq  atomic.Uint64

	mu      sync.Mutex
	records []Record
	queue   []Step
	script  func(Request) Step
}

// New starts a fake of the given kind. Close it when done.
func New(kind Kind, opts ...Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0", clock: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{kind: kind, cfg: cfg}
	switch kind {
	case OpenAI:
		s.prov = &openAI{}
	case Anthropic:
		s.prov = &anthropicAPI{}
	case Gemini:
		s.prov = &geminiAPI{}
	case Bedrock:
		s.prov = &bedrockAPI{}
	case Cohere:
		s.prov = &cohereAPI{}
	case Ollama:
		s.prov = &ollamaAPI{}
	case AzureOpenAI:
		s.prov = &azureOpenAI{entraToken: cfg.entraToken}
	default:
		return nil, fmt.Errorf("fakeprovider: unknown kind %q", kind)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("fakeprovider: listen %s: %w", cfg.addr, err)
	}
	s.ln = ln
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

// Start is New for tests: it fails tb on error and closes the server in
// tb.Cleanup.
func Start(tb testing.TB, kind Kind, opts ...Option) *Server {
	tb.Helper()
	s, err := New(kind, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// URL is the server's base URL without a path, e.g. "http://127.0.0.1:40123".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Kind reports which provider this server fakes.
func (s *Server) Kind() Kind { return s.kind }

// Close stops the server at once, cutting open connections.
func (s *Server) Close() error { return s.hs.Close() }

// Shutdown stops accepting requests and waits for in-flight ones until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

// Requests returns a copy of every request received so far, in arrival order.
func (s *Server) Requests() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.records))
	for i, r := range s.records {
		r.Header = r.Header.Clone()
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Reset forgets recorded requests and queued steps and removes the script.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records, s.queue, s.script = nil, nil, nil
}

// Enqueue adds steps that the next requests consume, one each, in order.
// Queued steps take precedence over the script and over x-fake-* headers.
func (s *Server) Enqueue(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, steps...)
}

// Script sets a function that picks the step for every request the queue
// does not cover. A zero Step means "no override": the x-fake-* headers then
// apply. Nil removes the script. The function may run concurrently.
func (s *Server) Script(fn func(Request) Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = fn
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{srv: s, w: w, r: r}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	ex.idx = len(s.records)
	s.records = append(s.records, Record{Request: req})
	s.mu.Unlock()
	defer func() {
		s.cfg.logger.LogAttrs(r.Context(), slog.LevelInfo, "fake request",
			slog.String("provider", string(s.kind)), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", ex.status))
	}()

	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			ex.fail(s.prov.canonicalError(http.StatusRequestEntityTooLarge))
			return
		}
		ex.fail(s.prov.canonicalError(http.StatusBadRequest))
		return
	}
	if !s.prov.handles(r.URL.Path) && !servesEmbeddings(s.prov, r.URL.Path) {
		ex.fail(s.prov.notFound(r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		ex.fail(s.prov.badMethod(r.Method, r.URL.Path))
		return
	}

	prov := s.prov
	if pr, ok := prov.(pathRouted); ok {
		prov = pr.forRequest(r.URL)
	}
	if hr, ok := prov.(httpRouted); ok {
		prov = hr.forHTTPRequest(r)
	}
	step, err := s.nextStep(req)
	if err != nil {
		e := s.prov.canonicalError(http.StatusBadRequest)
		e.Message = err.Error()
		ex.fail(e)
		return
	}
	ex.step = step
	if !sleep(r.Context(), step.Delay) {
		return
	}
	if step.Status != 0 {
		e := s.prov.canonicalError(step.Status)
		if step.ErrorType != "" {
			e.Type = step.ErrorType
		}
		if step.ErrorMessage != "" {
			e.Message = step.ErrorMessage
		}
		if step.Body != nil {
			ex.send(step.Status, "application/json", step.Body)
			return
		}
		ex.fail(e)
		return
	}
	if e := prov.authenticate(r.Header, s.cfg.apiKey); e != nil {
		ex.fail(e)
		return
	}
	if em, ok := prov.(embedder); ok && em.embedsPath(r.URL.Path) {
		s.serveEmbeddings(ex, prov, em, r.URL.Path, body)
		return
	}
	c, e := prov.parse(r.Header, body)
	if e != nil {
		ex.fail(e)
		return
	}
	if s.cfg.contextWindow > 0 && c.inputTokens > s.cfg.contextWindow {
		ex.fail(prov.contextExceeded(c.inputTokens, s.cfg.contextWindow))
		return
	}
	if len(s.cfg.models) > 0 && !slices.Contains(s.cfg.models, c.model) {
		ex.fail(prov.modelNotFound(c.model))
		return
	}
	out := s.compose(c, step.Reply)
	ex.setUsage(out.usage)
	if c.stream {
		ex.stream(prov.streamEvents(c, out))
		return
	}
	ex.send(http.StatusOK, "application/json", prov.body(c, out))
}

// nextStep picks the programmatic step for req, falling back to headers.
func (s *Server) nextStep(req Request) (Step, error) {
	s.mu.Lock()
	if len(s.queue) > 0 {
		st := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return st, nil
	}
	script := s.script
	s.mu.Unlock()
	if script != nil {
		if st := script(req); !reflect.ValueOf(st).IsZero() {
			return st, nil
		}
	}
	return stepFromHeaders(req.Header)
}

// id returns a server-unique identifier with the given prefix; ids are
// sequential so tests can predict them.
func (s *Server) id(prefix string) string {
	return prefix + "fake" + strconv.FormatUint(s.seq.Add(1), 10)
}

// exchange writes one response and keeps its record up to date.
type exchange struct {
	srv    *Server
	w      http.ResponseWriter
	r      *http.Request
	idx    int
	step   Step
	status int
}

func (ex *exchange) setStatus(status int) {
	ex.status = status
	ex.srv.mu.Lock()
	ex.srv.records[ex.idx].Status = status
	ex.srv.mu.Unlock()
}

func (ex *exchange) setUsage(u Usage) {
	ex.srv.mu.Lock()
	ex.srv.records[ex.idx].Usage = u
	ex.srv.mu.Unlock()
}

func (ex *exchange) header(contentType string) {
	h := ex.w.Header()
	for k, vs := range ex.step.Header {
		h[k] = slices.Clone(vs)
	}
	h.Set("Content-Type", contentType)
	ex.srv.prov.setResponseHeaders(h, ex.srv.id("req_"))
}

func (ex *exchange) fail(e *apiError) {
	if hs, ok := ex.srv.prov.(errorHeaderSetter); ok {
		hs.setErrorHeaders(ex.w.Header(), e)
	}
	ex.send(e.Status, "application/json", ex.srv.prov.errorBody(e))
}

// send writes a complete body, or only its first DropAfterBytes bytes before
// cutting the connection; Content-Length is set so the client notices.
func (ex *exchange) send(status int, contentType string, body []byte) {
	ex.header(contentType)
	ex.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	ex.setStatus(status)
	ex.w.WriteHeader(status)
	if n := ex.step.DropAfterBytes; n > 0 && n < len(body) {
		_, _ = ex.w.Write(body[:n])
		ex.abort()
	}
	_, _ = ex.w.Write(body)
}

// stream writes SSE events, flushing each so the client sees them one by one.
func (ex *exchange) stream(events []sseEvent) {
	contentType := "text/event-stream; charset=utf-8"
	if ct, ok := ex.srv.prov.(streamContentTyper); ok {
		contentType = ct.streamContentType()
	}
	ex.header(contentType)
	ex.w.Header().Set("Cache-Control", "no-cache")
	ex.setStatus(http.StatusOK)
	ex.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(ex.w)
	_ = rc.Flush()
	written := 0
	for i, ev := range events {
		if i > 0 && !sleep(ex.r.Context(), ex.step.EventDelay) {
			return
		}
		if n := ex.step.DropAfterEvents; n > 0 && i == n {
			ex.abort()
		}
		b := ev.bytes()
		if n := ex.step.DropAfterBytes; n > 0 && written+len(b) > n {
			_, _ = ex.w.Write(b[:n-written])
			ex.abort()
		}
		if _, err := ex.w.Write(b); err != nil {
			return
		}
		written += len(b)
		_ = rc.Flush()
	}
}

// abort flushes what was written and drops the connection without ending
// the response, which the client sees as an unexpected EOF.
func (ex *exchange) abort() {
	_ = http.NewResponseController(ex.w).Flush()
	panic(http.ErrAbortHandler)
}

// sleep waits d or until ctx ends, reporting whether the full wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sseEvent is one server-sent event; an empty name omits the event: line.
// A non-nil raw is sent as is instead: a binary stream's message.
type sseEvent struct {
	name string
	data []byte
	raw  []byte
}

func (e sseEvent) bytes() []byte {
	if e.raw != nil {
		return e.raw
	}
	var b []byte
	if e.name != "" {
		b = append(b, "event: "...)
		b = append(b, e.name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, e.data...)
	return append(b, "\n\n"...)
}

// nullJSON is an explicit JSON null for fields providers send as null.
var nullJSON = json.RawMessage("null")

// mustJSON marshals values built from this package's own wire types, which
// cannot fail. HTML escaping is off because providers send <, > and &
// literally.
func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fakeprovider: marshal %T: %v", v, err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// jsonKeys returns the JSON field names of an SDK param struct, which define
// the fields the real API accepts.
func jsonKeys(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

// withKeys adds extra accepted keys to a key set.
func withKeys(keys map[string]bool, extra ...string) map[string]bool {
	for _, k := range extra {
		keys[k] = true
	}
	return keys
}

// unknownKey reports, through mkErr, the first key of obj not in allowed.
func unknownKey(obj gjson.Result, allowed map[string]bool, mkErr func(key string) *apiError) *apiError {
	var e *apiError
	obj.ForEach(func(k, _ gjson.Result) bool {
		if !allowed[k.String()] {
			e = mkErr(k.String())
			return false
		}
		return true
	})
	return e
}

// jsonTypeName names a JSON value's type the way OpenAI's errors do.
func jsonTypeName(v gjson.Result) string {
	switch {
	case v.Type == gjson.String:
		return "a string"
	case v.Type == gjson.Number && v.Num == float64(int64(v.Num)):
		return "an integer"
	case v.Type == gjson.Number:
		return "a decimal"
	case v.Type == gjson.True || v.Type == gjson.False:
		return "a boolean"
	case v.IsArray():
		return "an array"
	case v.IsObject():
		return "an object"
	default:
		return "null"
	}
}

// quoteList renders values as 'a', 'b', and 'c'.
func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = "'" + v + "'"
	}
	switch len(q) {
	case 1:
		return q[0]
	case 2:
		return q[0] + " and " + q[1]
	}
	return strings.Join(q[:len(q)-1], ", ") + ", and " + q[len(q)-1]
}
