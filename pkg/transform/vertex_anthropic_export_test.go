package transform

// VertexAnthropicBody exposes the body rewrite of Claude on Vertex AI, so
// that tests can check its sjson path, which the Anthropic translator's
// model-first bodies never take.
var VertexAnthropicBody = vertexAnthropicBody
