// The official `ollama` npm package (ollama-js) on Ollama's native API.
import { Ollama } from "ollama";
import { URL, WEATHER_SCHEMA, main } from "./run.mjs";

const client = new Ollama({ host: URL });
const hi = [{ role: "user", content: "hi" }];
const tools = [{ type: "function", function: { name: "get_weather", description: "Weather for a city",
  parameters: WEATHER_SCHEMA } }];

await main({
  chat: async () => {
    const r = await client.chat({ model: "coder", messages: hi });
    return { text: r.message.content, done: r.done_reason, eval_count: r.eval_count };
  },
  chat_stream: async () => {
    const parts = []; let last = null;
    for await (const p of await client.chat({ model: "coder", messages: hi, stream: true })) {
      parts.push(p.message.content); last = p;
    }
    return { text: parts.join(""), lines: parts.length, done: last.done, done_reason: last.done_reason };
  },
  generate: async () => (await client.generate({ model: "coder", prompt: "hi" })).response,
  tools: async () => {
    const r = await client.chat({ model: "coder", messages: [{ role: "user", content: "weather?" }], tools });
    const call = r.message.tool_calls[0].function;
    const second = await client.chat({ model: "coder", tools, messages: [{ role: "user", content: "weather?" },
      r.message, { role: "tool", content: "9C and rain", tool_name: call.name }] });
    return { call: [call.name, call.arguments], answer: second.message.content };
  },
  structured: async () => JSON.parse((await client.chat({ model: "coder", messages: [{ role: "user",
    content: "weather?" }], format: WEATHER_SCHEMA })).message.content),
  list: async () => (await client.list()).models.map(m => m.name),
  ps: async () => (await client.ps()).models.map(m => m.name),
  show: async () => (await client.show({ model: "coder" })).capabilities,
  not_found: async () => client.chat({ model: "nope", messages: hi }),
  not_served: async () => client.pull({ model: "coder" }),
  broken_stream: async () => {
    for await (const p of await client.chat({ model: "solo", messages: hi, stream: true })) { /* an error line */ }
    return "no error";
  },
});
