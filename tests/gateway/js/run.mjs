// Shared by the client scripts: run the cases named on the command line (all when none), print one JSON
// object {case: result} on stdout; a case that throws records {error: {name, message, status}}.
export const URL = process.env.GATEWAY_URL;
export const WEATHER_SCHEMA = { type: "object", properties: { city: { type: "string" } }, required: ["city"],
  additionalProperties: false };

export async function main(cases) {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(cases);
  const out = {};
  for (const name of names) {
    try {
      out[name] = await cases[name]();
    } catch (e) {
      out[name] = { error: { name: e?.name, message: String(e?.message ?? e).slice(0, 500),
        status: e?.status ?? e?.statusCode ?? e?.status_code ?? null } };
    }
  }
  process.stdout.write(JSON.stringify(out));
}
