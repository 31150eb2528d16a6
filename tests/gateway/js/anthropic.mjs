// The official `@anthropic-ai/sdk` npm package on /v1/messages.
import Anthropic from "@anthropic-ai/sdk";
import { URL, WEATHER_SCHEMA, main } from "./run.mjs";

const client = new Anthropic({ baseURL: URL, apiKey: "unused", maxRetries: 0, timeout: 15000 });
const hi = [{ role: "user", content: "hi" }];
const tools = [{ name: "get_weather", description: "Weather for a city", input_schema: WEATHER_SCHEMA }];

await main({
  create: async () => {
    const r = await client.messages.create({ model: "coder", max_tokens: 64, messages: hi });
    return { text: r.content[0].text, stop: r.stop_reason, usage: r.usage, model: r.model };
  },
  stream: async () => {
    const s = client.messages.stream({ model: "coder", max_tokens: 64, messages: hi });
    const parts = [];
    s.on("text", t => parts.push(t));
    const final = await s.finalMessage();
    return { parts, text: final.content[0].text, stop: final.stop_reason, usage: final.usage };
  },
  tools: async () => {
    const r = await client.messages.create({ model: "coder", max_tokens: 64, tools, messages: [{ role: "user",
      content: "weather?" }] });
    const call = r.content.find(b => b.type === "tool_use");
    const second = await client.messages.create({ model: "coder", max_tokens: 64, tools, messages: [
      { role: "user", content: "weather?" }, { role: "assistant", content: r.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "9C and rain" }] }] });
    return { stop: r.stop_reason, call: [call.name, call.input], answer: second.content[0].text };
  },
  tools_stream: async () => {
    const s = client.messages.stream({ model: "coder", max_tokens: 64, tools, messages: [{ role: "user",
      content: "weather?" }] });
    const final = await s.finalMessage();
    return { stop: final.stop_reason, calls: final.content.filter(b => b.type === "tool_use").map(b => [b.name, b.input]) };
  },
  structured: async () => {
    const r = await client.messages.create({ model: "coder", max_tokens: 64, messages: [{ role: "user",
      content: "weather?" }], output_config: { format: { type: "json_schema", schema: WEATHER_SCHEMA } } });
    return JSON.parse(r.content[0].text);
  },
  count: async () => (await client.messages.countTokens({ model: "coder", messages: hi })).input_tokens,
  not_found: async () => client.messages.create({ model: "nope", max_tokens: 8, messages: hi }),
  broken_stream: async () => {
    const s = client.messages.stream({ model: "solo", max_tokens: 64, messages: hi });
    await s.finalMessage();
    return "no error";
  },
});
