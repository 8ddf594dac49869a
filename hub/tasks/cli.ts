/**
 * `grey-hub task submit FILE` and `grey-hub task get ID`: talk to the running
 * hub's API (DIR/run.json) with the admin credentials in DIR/admin. `submit`
 * shows progress until the task finishes (or --no-wait).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { adminClient as client } from "../cli/admin-client.ts";
import { requireString, type Command } from "../../plugins/host/cli.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";

const dataDirOpt = { "data-dir": { type: "string" as const, description: "hub data directory (required)" } };

function progressLine(t: Record<string, unknown>): string {
  const p = (t.progress ?? {}) as Record<string, number>;
  return `${t.id} ${t.state}  ${Object.entries(p).map(([k, v]) => `${k}=${v}`).join(" ")}`;
}

export const taskSubmitCommand: Command = {
  summary: "submit a task (JSON file, see hub/tasks/spec.ts) and show progress until it finishes",
  usage: "task submit FILE --data-dir DIR [--no-wait] [--json]",
  options: {
    ...dataDirOpt,
    "no-wait": { type: "boolean", description: "print the task id and return" },
    json: { type: "boolean", description: "print the finished task as JSON" },
  },
  async run(v, positionals) {
    const file = positionals[0];
    if (!file) throw new ConfigError(["task submit needs a FILE"]);
    let body: unknown;
    try {
      body = JSON.parse(readFileSync(resolve(file), "utf8"));
    } catch (err) {
      throw new ConfigError([`${file}: ${(err as Error).message}`]);
    }
    const call = await client(resolve(requireString(v, "data-dir")));
    const created = await call("POST", "/v1/tasks", body);
    if (v["no-wait"]) {
      console.log(created.id);
      return;
    }
    let last = "";
    for (;;) {
      const t = await call("GET", `/v1/tasks/${created.id}`);
      const line = progressLine(t);
      if (line !== last && !v.json) console.error(line);
      last = line;
      if (t.state !== "running") {
        if (v.json) console.log(JSON.stringify(t, null, 2));
        else if (t.state === "done") console.log((t.result as { text?: string; base64: string } | undefined)?.text ?? (t.result as { base64: string } | undefined)?.base64 ?? "");
        else console.error(`task ${t.id} failed: ${t.error}`);
        return t.state === "done" ? 0 : 1;
      }
      await Bun.sleep(250);
    }
  },
};

export const taskGetCommand: Command = {
  summary: "show a task and each subtask (cluster, state, attempts, timings, result or error)",
  usage: "task get ID --data-dir DIR",
  options: { ...dataDirOpt },
  async run(v, positionals) {
    const id = positionals[0];
    if (!id) throw new ConfigError(["task get needs a task ID"]);
    const call = await client(resolve(requireString(v, "data-dir")));
    console.log(JSON.stringify(await call("GET", `/v1/tasks/${encodeURIComponent(id)}`), null, 2));
  },
};
