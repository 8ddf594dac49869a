/**
 * `grey-hub agreement apply FILE`, `agreement list`, `agreement get ID` and
 * `agreement invoice ID --from --to [--csv]`: resource-sharing agreements on
 * a running hub, through its API with the admin credentials.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { requireString, type Command } from "../../plugins/host/cli.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";
import { adminClient } from "./admin-client.ts";

const dataDirOpt = { "data-dir": { type: "string" as const, description: "hub data directory (required)" } };
const dir = (v: Record<string, unknown>) => resolve(requireString(v, "data-dir"));
const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));

export const agreementCommands: Record<string, Command> = {
  "agreement apply": {
    summary: "create or update a resource-sharing agreement from its YAML file (every problem reported with its line)",
    usage: "agreement apply FILE --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v, positionals) {
      const file = positionals[0];
      if (!file) throw new ConfigError(["agreement apply needs a FILE"]);
      let text: string;
      try {
        text = readFileSync(resolve(file), "utf8");
      } catch (err) {
        throw new ConfigError([`${file}: ${(err as Error).message}`]);
      }
      const call = await adminClient(dir(v));
      print(await call("POST", "/v1/agreements", text, { contentType: "application/yaml" }));
    },
  },
  "agreement list": {
    summary: "list agreements",
    usage: "agreement list --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v) {
      print(await (await adminClient(dir(v)))("GET", "/v1/agreements"));
    },
  },
  "agreement get": {
    summary: "show one agreement",
    usage: "agreement get ID --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v, positionals) {
      if (!positionals[0]) throw new ConfigError(["agreement get needs an ID"]);
      print(await (await adminClient(dir(v)))("GET", `/v1/agreements/${encodeURIComponent(positionals[0])}`));
    },
  },
  "agreement invoice": {
    summary: "invoice of an agreement for a period (JSON, or CSV with --csv), reproducible to the cent",
    usage: "agreement invoice ID --data-dir DIR --from RFC3339 --to RFC3339 [--csv]",
    options: {
      ...dataDirOpt,
      from: { type: "string", description: "period start (RFC 3339)" },
      to: { type: "string", description: "period end (RFC 3339, exclusive)" },
      csv: { type: "boolean", description: "CSV instead of JSON" },
    },
    async run(v, positionals) {
      const id = positionals[0];
      const problems = [...(id ? [] : ["agreement invoice needs an ID"]), ...["from", "to"].filter((f) => typeof v[f] !== "string").map((f) => `--${f} is required`)];
      if (problems.length) throw new ConfigError(problems);
      const q = new URLSearchParams({ from: v.from as string, to: v.to as string, format: v.csv ? "csv" : "json" });
      const r = await (await adminClient(dir(v)))("GET", `/v1/agreements/${encodeURIComponent(id!)}/invoice?${q}`, undefined, { raw: true });
      if (v.csv) process.stdout.write(r.text ?? "");
      else print({ ...r, text: undefined });
    },
  },
};
