package fakeprovider_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
)

func TestCountTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"spaces only", "  \n\t ", 0},
		{"words", "one two  three\nfour", 4},
		{"punctuation sticks to words", "hello, world!", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fakeprovider.CountTokens(tt.in); got != tt.want {
				t.Errorf("CountTokens(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestNew_UnknownKind(t *testing.T) {
	if _, err := fakeprovider.New("gemini"); err == nil {
		t.Fatal("want error for unknown kind")
	}
}

func TestServer_ScriptedErrors(t *testing.T) {
	tests := []struct {
		name     string
		kind     fakeprovider.Kind
		step     fakeprovider.Step
		wantCode int
		wantType string
		wantMsg  string
	}{
		{name: "openai 429", kind: fakeprovider.OpenAI, step: fakeprovider.Step{Status: 429},
			wantCode: 429, wantType: "requests", wantMsg: "Rate limit reached"},
		{name: "openai 500 custom message", kind: fakeprovider.OpenAI, step: fakeprovider.Step{Status: 500, ErrorMessage: "boom"},
			wantCode: 500, wantType: "server_error", wantMsg: "boom"},
		{name: "openai raw body", kind: fakeprovider.OpenAI, step: fakeprovider.Step{Status: 502, Body: []byte(`{"error":{"message":"raw","type":"proxy"}}`)},
			wantCode: 502, wantType: "proxy", wantMsg: "raw"},
		{name: "anthropic 529 overloaded", kind: fakeprovider.Anthropic, step: fakeprovider.Step{Status: 529},
			wantCode: 529, wantType: "overloaded_error", wantMsg: "Overloaded"},
		{name: "anthropic 429", kind: fakeprovider.Anthropic, step: fakeprovider.Step{Status: 429},
			wantCode: 429, wantType: "rate_limit_error", wantMsg: "rate limit"},
		{name: "anthropic custom type", kind: fakeprovider.Anthropic, step: fakeprovider.Step{Status: 400, ErrorType: "invalid_request_error", ErrorMessage: "prompt is too long: 300000 tokens > 200000 maximum"},
			wantCode: 400, wantType: "invalid_request_error", wantMsg: "prompt is too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, tt.kind)
			tt.step.Header = http.Header{"Retry-After": {"7"}}
			srv.Enqueue(tt.step)
			code, typ, msg, hdr := callError(t, srv)
			if code != tt.wantCode || typ != tt.wantType || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error = %d %q %q, want %d %q containing %q", code, typ, msg, tt.wantCode, tt.wantType, tt.wantMsg)
			}
			if hdr.Get("Retry-After") != "7" {
				t.Errorf("retry-after = %q", hdr.Get("Retry-After"))
			}
			if got := srv.Requests()[0].Status; got != tt.wantCode {
				t.Errorf("recorded status = %d", got)
			}
		})
	}
}

// callError sends a valid request through the kind's SDK, expecting a typed
// API error.
func callError(t *testing.T, srv *fakeprovider.Server) (code int, typ, msg string, hdr http.Header) {
	t.Helper()
	switch srv.Kind() {
	case fakeprovider.OpenAI:
		client := openAIClient(srv)
		_, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hi")})
		var e *openai.Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v, want *openai.Error", err)
		}
		return e.StatusCode, e.Type, e.Message, e.Response.Header
	default:
		client := anthropicClient(srv)
		_, err := client.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 10, Messages: []anthropic.MessageParam{anUser("hi")}})
		var e *anthropic.Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v, want *anthropic.Error", err)
		}
		return e.StatusCode, string(e.Type()), e.RawJSON(), e.Response.Header
	}
}

func TestServer_EnqueueThenRetrySucceeds(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Anthropic)
	srv.Enqueue(fakeprovider.Step{Status: 529, Header: http.Header{"Retry-After-Ms": {"1"}}})
	client := anthropicClient(srv, anoption.WithMaxRetries(1))
	resp, err := client.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 10, Messages: []anthropic.MessageParam{anUser("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Content[0].Text != "echo: hi" {
		t.Errorf("text = %q", resp.Content[0].Text)
	}
	recs := srv.Requests()
	if len(recs) != 2 || recs[0].Status != 529 || recs[1].Status != 200 {
		t.Errorf("records = %d, statuses %v", len(recs), statuses(recs))
	}
	if recs[1].Usage != (fakeprovider.Usage{InputTokens: 1, OutputTokens: 2}) {
		t.Errorf("recorded usage = %+v", recs[1].Usage)
	}
}

func statuses(recs []fakeprovider.Record) []int {
	var out []int
	for _, r := range recs {
		out = append(out, r.Status)
	}
	return out
}

func TestServer_Script(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.OpenAI)
	srv.Script(func(r fakeprovider.Request) fakeprovider.Step {
		if strings.Contains(string(r.Body), "fail") {
			return fakeprovider.Step{Status: 503}
		}
		if strings.Contains(string(r.Body), "tool") {
			return fakeprovider.Step{Reply: fakeprovider.Reply{Text: "calling", ToolCalls: []fakeprovider.ToolCall{{Name: "lookup", Arguments: `{"q":1}`}}}}
		}
		return fakeprovider.Step{}
	})
	client := openAIClient(srv)
	tests := []struct {
		name     string
		text     string
		wantCode int
		wantText string
		wantTool string
	}{
		{name: "script fails", text: "please fail", wantCode: 503},
		{name: "script replies with a tool call", text: "use a tool", wantText: "calling", wantTool: "lookup"},
		{name: "zero step falls through", text: "hi", wantText: "echo: hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "m", Messages: userMsg(tt.text)})
			if tt.wantCode != 0 {
				var e *openai.Error
				if !errors.As(err, &e) || e.StatusCode != tt.wantCode {
					t.Fatalf("err = %v, want status %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := resp.Choices[0].Message
			if m.Content != tt.wantText {
				t.Errorf("text = %q, want %q", m.Content, tt.wantText)
			}
			if tt.wantTool != "" && (len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != tt.wantTool || resp.Choices[0].FinishReason != "tool_calls") {
				t.Errorf("tool calls = %+v", m.ToolCalls)
			}
		})
	}
	srv.Reset()
	if len(srv.Requests()) != 0 {
		t.Error("Reset kept records")
	}
}

func TestServer_Delay(t *testing.T) {
	tests := []struct {
		name   string
		step   fakeprovider.Step
		header string
	}{
		{name: "programmatic", step: fakeprovider.Step{Delay: 2 * time.Second}},
		{name: "header", header: "2000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI)
			if tt.header == "" {
				srv.Enqueue(tt.step)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			client := openAIClient(srv)
			start := time.Now()
			_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "m", Messages: userMsg("hi")},
				option.WithHeader(fakeprovider.HeaderDelayMS, tt.header))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want deadline exceeded", err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("client waited %v", el)
			}
		})
	}
}

func TestServer_DropMidStream(t *testing.T) {
	tests := []struct {
		name   string
		kind   fakeprovider.Kind
		step   fakeprovider.Step
		header [2]string // scripting header name and value, if any
	}{
		{name: "openai after events", kind: fakeprovider.OpenAI, step: fakeprovider.Step{DropAfterEvents: 2}},
		{name: "openai after events by header", kind: fakeprovider.OpenAI, header: [2]string{fakeprovider.HeaderDropAfterEvents, "2"}},
		{name: "openai after bytes", kind: fakeprovider.OpenAI, step: fakeprovider.Step{DropAfterBytes: 300}},
		{name: "anthropic after events", kind: fakeprovider.Anthropic, step: fakeprovider.Step{DropAfterEvents: 3}},
		{name: "anthropic after bytes by header", kind: fakeprovider.Anthropic, header: [2]string{fakeprovider.HeaderDropAfterBytes, "400"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, tt.kind)
			var oaOpts []option.RequestOption
			var anOpts []anoption.RequestOption
			if tt.header[0] == "" {
				srv.Enqueue(tt.step)
			} else {
				oaOpts = append(oaOpts, option.WithHeader(tt.header[0], tt.header[1]))
				anOpts = append(anOpts, anoption.WithHeader(tt.header[0], tt.header[1]))
			}
			const text = "one two three four five"
			var got int
			var err error
			if tt.kind == fakeprovider.OpenAI {
				client := openAIClient(srv, oaOpts...)
				s := client.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{Model: "m", Messages: userMsg(text)})
				for s.Next() {
					got++
				}
				err = s.Err()
			} else {
				client := anthropicClient(srv, anOpts...)
				s := client.Messages.NewStreaming(t.Context(), anthropic.MessageNewParams{Model: "m", MaxTokens: 10, Messages: []anthropic.MessageParam{anUser(text)}})
				for s.Next() {
					got++
				}
				err = s.Err()
			}
			if err == nil {
				t.Fatalf("stream ended cleanly after %d events, want an error", got)
			}
			if got == 0 {
				t.Error("no events before the drop")
			}
		})
	}
}

func TestServer_DropNonStream(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.OpenAI)
	srv.Enqueue(fakeprovider.Step{DropAfterBytes: 20})
	client := openAIClient(srv)
	_, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "m", Messages: userMsg("hi")})
	if err == nil {
		t.Fatal("want an error from a truncated body")
	}
}

func TestServer_HeaderFailures(t *testing.T) {
	tests := []struct {
		name     string
		headers  map[string]string
		wantCode int
		wantMsg  string
	}{
		{name: "status", headers: map[string]string{fakeprovider.HeaderStatus: "429", fakeprovider.HeaderRetryAfter: "3"}, wantCode: 429, wantMsg: "Rate limit"},
		{name: "status with message", headers: map[string]string{fakeprovider.HeaderStatus: "500", fakeprovider.HeaderErrorMessage: "kaput"}, wantCode: 500, wantMsg: "kaput"},
		{name: "bad header value", headers: map[string]string{fakeprovider.HeaderDelayMS: "soon"}, wantCode: 400, wantMsg: "x-fake-delay-ms"},
		{name: "status out of range", headers: map[string]string{fakeprovider.HeaderStatus: "200"}, wantCode: 400, wantMsg: "x-fake-status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI)
			var opts []option.RequestOption
			for k, v := range tt.headers {
				opts = append(opts, option.WithHeader(k, v))
			}
			client := openAIClient(srv)
			_, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "m", Messages: userMsg("hi")}, opts...)
			var e *openai.Error
			if !errors.As(err, &e) || e.StatusCode != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("err = %v, want %d containing %q", err, tt.wantCode, tt.wantMsg)
			}
			if ra := tt.headers[fakeprovider.HeaderRetryAfter]; ra != "" && e.Response.Header.Get("Retry-After") != ra {
				t.Errorf("retry-after = %q", e.Response.Header.Get("Retry-After"))
			}
		})
	}
}

// TestServer_StreamWire reads the raw SSE bytes: event/data lines, the ping
// the SDK hides, [DONE], and that events arrive one by one rather than
// buffered.
func TestServer_StreamWire(t *testing.T) {
	tests := []struct {
		name      string
		kind      fakeprovider.Kind
		path      string
		body      string
		header    map[string]string
		wantLines []string
	}{
		{
			name: "openai", kind: fakeprovider.OpenAI, path: "/chat/completions",
			body: `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b"}]}`,
			wantLines: []string{
				`data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"service_tier":"default","system_fingerprint":"fp_fake"}`,
				`data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"echo: "},"logprobs":null,"finish_reason":null}],"service_tier":"default","system_fingerprint":"fp_fake"}`,
				`data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"a "},"logprobs":null,"finish_reason":null}],"service_tier":"default","system_fingerprint":"fp_fake"}`,
				`data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"b"},"logprobs":null,"finish_reason":null}],"service_tier":"default","system_fingerprint":"fp_fake"}`,
				`data: {"id":"chatcmpl-fake1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"service_tier":"default","system_fingerprint":"fp_fake"}`,
				`data: [DONE]`,
			},
		},
		{
			name: "anthropic", kind: fakeprovider.Anthropic, path: "/v1/messages",
			body:   `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"a"}]}`,
			header: map[string]string{"Anthropic-Version": "2023-06-01"},
			wantLines: []string{
				"event: message_start",
				`data: {"type":"message_start","message":{"id":"msg_fake1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}`,
				"event: content_block_start",
				`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
				"event: ping",
				`data: {"type":"ping"}`,
				"event: content_block_delta",
				`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"echo: "}}`,
				"event: content_block_delta",
				`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`,
				"event: content_block_stop",
				`data: {"type":"content_block_stop","index":0}`,
				"event: message_delta",
				`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}`,
				"event: message_stop",
				`data: {"type":"message_stop"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, tt.kind, fakeprovider.WithClock(func() time.Time { return time.Unix(0, 0) }))
			const gap = 40 * time.Millisecond
			srv.Enqueue(fakeprovider.Step{EventDelay: gap})
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("content-type = %q", ct)
			}
			sc := bufio.NewScanner(resp.Body)
			var lines []string
			var firstAt time.Duration
			start := time.Now()
			for sc.Scan() {
				if sc.Text() == "" {
					continue
				}
				if len(lines) == 0 {
					firstAt = time.Since(start)
				}
				lines = append(lines, sc.Text())
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Join(lines, "\n"), strings.Join(tt.wantLines, "\n"); got != want {
				t.Errorf("stream:\n%s\nwant:\n%s", got, want)
			}
			total := time.Since(start)
			if firstAt >= gap || total < gap*3 {
				t.Errorf("first event after %v, all after %v: events were not flushed one by one", firstAt, total)
			}
		})
	}
}

func TestServer_Routes(t *testing.T) {
	tests := []struct {
		name     string
		kind     fakeprovider.Kind
		method   string
		path     string
		wantCode int
		wantBody string
	}{
		{"openai unknown path", fakeprovider.OpenAI, http.MethodPost, "/v1/moderations", 404, `{"error":{"message":"Invalid URL (POST /v1/moderations)","type":"invalid_request_error","param":null,"code":null}}`},
		{"openai wrong method", fakeprovider.OpenAI, http.MethodGet, "/v1/chat/completions", 405, `{"error":{"message":"Invalid method for URL (GET /v1/chat/completions)","type":"invalid_request_error","param":null,"code":null}}`},
		{"anthropic unknown path", fakeprovider.Anthropic, http.MethodPost, "/v1/complete", 404, `{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}`},
		{"anthropic wrong method", fakeprovider.Anthropic, http.MethodGet, "/v1/messages", 405, `{"type":"error","error":{"type":"invalid_request_error","message":"Method GET not allowed"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, tt.kind)
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || string(b) != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, b, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestServer_Concurrent(t *testing.T) {
	oa := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey(testKey))
	an := fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey(testKey))
	oaClient, anClient := openAIClient(oa), anthropicClient(an)
	oa.Script(func(r fakeprovider.Request) fakeprovider.Step {
		if strings.Contains(string(r.Body), "n7 ") {
			return fakeprovider.Step{Status: 429}
		}
		return fakeprovider.Step{}
	})
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		text := fmt.Sprintf("n%d words here", i)
		wantFail := strings.HasPrefix(text, "n7 ")
		wg.Go(func() {
			resp, err := oaClient.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "m", Messages: userMsg(text)})
			switch {
			case wantFail && err == nil:
				errs <- errors.New("scripted 429 not returned")
			case !wantFail && err != nil:
				errs <- err
			case !wantFail && resp.Choices[0].Message.Content != "echo: "+text:
				errs <- fmt.Errorf("openai reply %q", resp.Choices[0].Message.Content)
			}
		})
		wg.Go(func() {
			s := oaClient.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{Model: "m", Messages: userMsg(text)})
			for s.Next() {
			}
			if err := s.Err(); (err != nil) != wantFail {
				errs <- fmt.Errorf("openai stream: %v", err)
			}
		})
		wg.Go(func() {
			resp, err := anClient.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "m", MaxTokens: 50, Messages: []anthropic.MessageParam{anUser(text)}})
			if err != nil {
				errs <- err
			} else if resp.Content[0].Text != "echo: "+text {
				errs <- fmt.Errorf("anthropic reply %q", resp.Content[0].Text)
			}
		})
		wg.Go(func() {
			s := anClient.Messages.NewStreaming(t.Context(), anthropic.MessageNewParams{Model: "m", MaxTokens: 50, Messages: []anthropic.MessageParam{anUser(text)}})
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				errs <- fmt.Errorf("anthropic stream: %w", err)
			}
			_ = an.Requests()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(oa.Requests()); got != 2*n {
		t.Errorf("openai records = %d, want %d", got, 2*n)
	}
	if got := len(an.Requests()); got != 2*n {
		t.Errorf("anthropic records = %d, want %d", got, 2*n)
	}
}
