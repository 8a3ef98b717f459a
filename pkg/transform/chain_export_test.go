package transform

// NewMessagesViaChat returns the Messages API translators that go through
// chat completions to provider p, even for Anthropic, which the
// constructors pass through: tests use it to round-trip Anthropic requests
// and responses through chat.
func NewMessagesViaChat(p Provider, t Target, o ResponseOptions) (RequestTranslator, ResponseTranslator, error) {
	inner, err := NewRequestTranslator(APIChatCompletions, p, t)
	if err != nil {
		return nil, nil, err
	}
	innerResp, err := NewResponseTranslator(APIChatCompletions, p, messagesChatOptions(o))
	if err != nil {
		return nil, nil, err
	}
	return messagesViaChatRequest(p, t, inner), messagesViaChatResponse(o, innerResp), nil
}
