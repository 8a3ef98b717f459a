// Drives Tollgate through the official openai npm package, unmodified:
// one non-stream and one stream chat completion, and one error. Prints one
// JSON object with what the SDK returned, for the Go test to check.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.TOLLGATE_BASE_URL, apiKey: process.env.TOLLGATE_KEY, maxRetries: 0 });
const out = {};

const cc = await client.chat.completions.create({
  model: "claude-sonnet",
  messages: [{ role: "user", content: "hello from node" }],
});
out.content = cc.choices[0].message.content;
out.finish = cc.choices[0].finish_reason;
out.usage = cc.usage;

const stream = await client.chat.completions.create({
  model: "gpt-4o",
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: "user", content: "stream from node" }],
});
out.streamed = "";
for await (const chunk of stream) {
  for (const choice of chunk.choices) out.streamed += choice.delta?.content ?? "";
  if (chunk.usage) out.streamUsage = chunk.usage;
}

try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
} catch (err) {
  out.errorClass = err.constructor.name;
  out.errorStatus = err.status;
}
console.log(JSON.stringify(out));
