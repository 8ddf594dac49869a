/**
 * Runs the compliance suite matching an external plugin file named by GREY_PLUGIN (see check.ts).
 * Connectors run with the same instance as agent and hub (a self-contained platform, like the
 * example connector); connectors that need a platform mock call connectorCompliance from their
 * own tests with a full harness (unreachable endpoint, expiry time).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Catalog } from "../../host/catalog.ts";
import { addExternalPlugin, hostApi, loadPluginFile } from "../../host/loader.ts";
import type { Connector } from "../connector.ts";
import type { Kms } from "../kms.ts";
import { connectorCompliance } from "./connector.ts";
import { kmsCompliance } from "./kms.ts";

/**
 * Without GREY_PLUGIN (the project's own test run) the suite checks the example external connector,
 * bundled here exactly as an author would bundle theirs: the checker itself is tested on every run.
 */
async function exampleBundle(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "grey-plugin-check-"));
  const r = await Bun.build({ entrypoints: [resolve(import.meta.dir, "../../../examples/external-connector/index.ts")], target: "bun", outdir: dir });
  if (!r.success) throw new Error(`bundling the example connector failed: ${r.logs.join("\n")}`);
  return r.outputs[0]!.path;
}
const file = process.env.GREY_PLUGIN ?? (await exampleBundle());
const options = JSON.parse(process.env.GREY_PLUGIN_OPTIONS ?? "{}") as Record<string, unknown>;
const components = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() }, fetch };

{
  const loaded = await loadPluginFile({ file, options });
  const make = <T>() => loaded.definition.create({ ...components, host: hostApi }, options) as T;
  describe(`plugin file ${file}`, () => {
    test("loads like the binaries load it and passes the catalog's checks", () => {
      const c = new Catalog();
      addExternalPlugin(c, loaded, components);
      expect(c.list().some((p) => p.name === loaded.definition.name)).toBe(true);
    });
  });
  if (loaded.definition.kind === "connector") {
    connectorCompliance(loaded.definition.name, async () => {
      const plugin = make<Connector>();
      return { agent: plugin, hub: plugin, now: () => new Date(), stop() {} };
    });
  } else if (loaded.definition.kind === "kms") {
    kmsCompliance(loaded.definition.name, async () => ({ kms: make<Kms>(), stop() {} }));
  }
}
