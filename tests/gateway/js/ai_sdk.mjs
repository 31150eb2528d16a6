// The Vercel AI SDK (`ai`) with one provider per run: `responses` (@ai-sdk/openai's default, the Responses
// API), `chat` (@ai-sdk/openai's chat completions), `anthropic` (@ai-sdk/anthropic), `ollama` (ollama-ai-provider-v2).
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOllama } from "ollama-ai-provider-v2";
import { z } from "zod";
import { URL, main } from "./run.mjs";

globalThis.AI_SDK_LOG_WARNINGS = false;  // "model 'coder' is unknown": it is an agent
const kind = process.env.AI_SDK_PROVIDER;
const openai = createOpenAI({ baseURL: URL + "/v1", apiKey: "unused" });
const providers = { responses: openai, chat: openai.chat, anthropic: createAnthropic({ baseURL: URL + "/v1",
  apiKey: "unused" }), ollama: createOllama({ baseURL: URL + "/api" }) };
const model = (name = "coder") => providers[kind](name);
const weather = tool({ description: "Weather for a city", inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `9C and rain in ${city}` });

async function streamed(m) {
  let failed = null;
  const r = streamText({ model: m, prompt: "hi", maxRetries: 0, onError: ({ error }) => { failed = error; } });
  const parts = [];
  for await (const t of r.textStream) parts.push(t);
  if (failed) throw failed;
  return { parts, finish: await r.finishReason, output: (await r.usage).outputTokens };
}

await main({
  text: async () => {
    const r = await generateText({ model: model(), prompt: "hi", maxRetries: 0 });
    return { text: r.text, finish: r.finishReason, input: r.usage.inputTokens, output: r.usage.outputTokens };
  },
  stream: async () => streamed(model()),
  broken_stream: async () => streamed(model("solo")),  // the test breaks the model's stream after its first text
  tools: async () => {
    const r = await generateText({ model: model(), prompt: "weather in Paris?", tools: { get_weather: weather },
      stopWhen: stepCountIs(3), maxRetries: 0 });
    return { text: r.text, steps: r.steps.map(s => [s.finishReason, s.toolCalls.map(c => [c.toolName, c.input]),
      s.toolResults.map(t => t.output)]) };
  },
  tools_stream: async () => {
    const r = streamText({ model: model(), prompt: "weather in Paris?", tools: { get_weather: weather },
      stopWhen: stepCountIs(3), maxRetries: 0 });
    const kinds = new Set();
    for await (const p of r.fullStream) {
      if (p.type === "error") throw p.error;
      kinds.add(p.type);
    }
    return { text: await r.text, kinds: [...kinds] };
  },
  object: async () => (await generateObject({ model: model(), schema: z.object({ city: z.string() }),
    prompt: "weather?", maxRetries: 0 })).object,
  not_found: async () => generateText({ model: model("nope"), prompt: "hi", maxRetries: 0 }),
});
