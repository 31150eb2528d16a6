// The official `openai` npm package: chat completions and the Responses API.
import OpenAI from "openai";
import { URL, WEATHER_SCHEMA, main } from "./run.mjs";

const client = new OpenAI({ baseURL: URL + "/v1", apiKey: "unused", maxRetries: 0, timeout: 15000 });
const hi = [{ role: "user", content: "hi" }];
const tool = { type: "function", function: { name: "get_weather", description: "Weather for a city",
  parameters: WEATHER_SCHEMA } };

await main({
  chat: async () => {
    const r = await client.chat.completions.create({ model: "coder", messages: hi });
    return { text: r.choices[0].message.content, finish: r.choices[0].finish_reason, usage: r.usage, model: r.model };
  },
  chat_stream: async () => {
    const s = await client.chat.completions.create({ model: "coder", messages: hi, stream: true,
      stream_options: { include_usage: true } });
    const parts = []; let usage = null; let finish = null;
    for await (const c of s) {
      if (c.choices[0]?.delta?.content) parts.push(c.choices[0].delta.content);
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    return { parts, finish, usage };
  },
  chat_tools: async () => {  // the SDK's tool runner: call, run, answer
    const runner = client.chat.completions.runTools({ model: "coder", messages: [{ role: "user", content: "weather?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: WEATHER_SCHEMA,
        function: ({ city }) => `9C and rain in ${city}`, parse: JSON.parse } }] });
    return { text: await runner.finalContent(), calls: runner.messages.filter(m => m.role === "tool").length };
  },
  chat_parse: async () => {  // structured output: a JSON schema the answer must follow
    const r = await client.chat.completions.parse({ model: "coder", messages: [{ role: "user", content: "weather?" }],
      response_format: { type: "json_schema", json_schema: { name: "weather", schema: WEATHER_SCHEMA, strict: true } } });
    return r.choices[0].message.parsed;
  },
  responses: async () => {
    const r = await client.responses.create({ model: "coder", input: "hi" });
    return { text: r.output_text, status: r.status, usage: r.usage };
  },
  responses_stream: async () => {
    const s = client.responses.stream({ model: "coder", input: "hi" });
    const parts = [];
    for await (const e of s) if (e.type === "response.output_text.delta") parts.push(e.delta);
    return { parts, text: (await s.finalResponse()).output_text };
  },
  responses_tools: async () => {
    const r = await client.responses.create({ model: "coder", input: "weather?",
      tools: [{ type: "function", name: "get_weather", parameters: WEATHER_SCHEMA, strict: true }] });
    return r.output.filter(o => o.type === "function_call").map(o => [o.name, JSON.parse(o.arguments)]);
  },
  responses_parse: async () => {
    const r = await client.responses.parse({ model: "coder", input: "weather?", text: { format: {
      type: "json_schema", name: "weather", schema: WEATHER_SCHEMA, strict: true } } });
    return r.output_parsed;
  },
  not_found: async () => client.chat.completions.create({ model: "nope", messages: hi }),
  broken_stream: async () => {
    const s = await client.chat.completions.create({ model: "solo", messages: hi, stream: true });
    for await (const c of s) { /* the error event ends it */ }
    return "no error";
  },
});
