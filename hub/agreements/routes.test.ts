import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import type { FederationIdentity } from "../../plugins/sdk/identity.ts";
import { AuditLog } from "../audit/index.ts";
import { loadRateCards, UsageMeter } from "../billing/index.ts";
import { agreementRoutes, AgreementStore, type Agreement, type AgreementRoutesEnv } from "./index.ts";
import { EXAMPLE_YAML } from "./testdata.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ADMIN: FederationIdentity = { role: "admin", org: "org-a", name: "ops", serial: "01", notBefore: new Date(0), notAfter: new Date(8e15) };
const MEMBER: FederationIdentity = { role: "member", org: "org-b", region: "eu", cluster: "c1", serial: "02", notBefore: new Date(0), notAfter: new Date(8e15) };

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "grey-agreement-routes-"));
  dirs.push(dir);
  const path = join(dir, "hub.db");
  const rateCards = loadRateCards(join(import.meta.dir, "../billing/rate-cards"));
  const store = AgreementStore.open(path, { rateCardExists: (id) => rateCards.has(id) });
  const meter = UsageMeter.open(path);
  const clock = { now: () => Date.parse("2024-03-01T00:00:00Z") };
  const audit = AuditLog.open(path, { signingKey: new Uint8Array(32).fill(1), clock });
  // Stands in for the API's clientIdentity middleware: the test picks the caller per request.
  const app = new Hono<AgreementRoutesEnv>();
  app.use("*", async (c, next) => {
    const who = c.req.header("x-test-identity");
    if (who === "admin") c.set("identity", ADMIN);
    if (who === "member") c.set("identity", MEMBER);
    await next();
  });
  app.route("/v1/agreements", agreementRoutes({ store, meter, rateCards, audit, clock }));
  app.onError((_err, c) => c.json({ error: { code: "PARENT" } }, 500));
  const post = (body: string, type = "application/yaml", who = "admin") =>
    app.request("/v1/agreements", { method: "POST", body, headers: { "content-type": type, "x-test-identity": who } });
  return { app, post, meter, audit, close: () => (store.close(), meter.close(), audit.close()) };
}

describe("agreementRoutes", () => {
  test("POST YAML creates, re-POST is unchanged, GET reads it back, audit records the change", async () => {
    const { app, post, audit, close } = setup();
    const created = await post(EXAMPLE_YAML);
    expect(created.status).toBe(201);
    const { agreement, change } = (await created.json()) as { agreement: Agreement; change: string };
    expect(change).toBe("created");
    expect(agreement).toMatchObject({ provider: "org-a", consumer: "org-b", version: 1, resources: { cpu: { limitMilliCores: 1_000_000 } } });

    const again = await post(EXAMPLE_YAML);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { change: string }).change).toBe("unchanged");

    expect(await (await app.request(`/v1/agreements/${agreement.id}`)).json()).toEqual(agreement);
    expect(((await (await app.request("/v1/agreements")).json()) as { items: Agreement[] }).items).toEqual([agreement]);
    expect((await app.request("/v1/agreements/agr-0000000000000000")).status).toBe(404);
    expect((await app.request("/v1/agreements/nonsense")).status).toBe(404);

    const records = audit.page();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ kind: "agreement-change", actor: "grey://org-a/_admin/ops", subject: agreement.id, details: { change: "created", version: 1 } });
    close();
  });

  test("POST JSON works; a bad document answers 400 with every problem, path and line", async () => {
    const { post, close } = setup();
    const json = JSON.stringify({ agreement: { provider: "org-a", consumer: "org-c", resources: { memory: { limit: "512 GiB", priority: "low" } }, billing: { model: "pay-per-use", rate_card: "standard-2024" } } }, null, 2);
    expect((await post(json, "application/json")).status).toBe(201);

    const bad = EXAMPLE_YAML.replace('"1000 cores"', '"lots"').replace("standard-2024", "platinum");
    const res = await post(bad);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        code: "ERR_AGREEMENT_INVALID",
        message: "the agreement has problems",
        problems: [
          { path: "agreement.resources.cpu.limit", line: 5, message: 'cannot read cpu quantity "lots" (write e.g. "1000 cores", "0.5 cores" or "500m")' },
          { path: "agreement.billing.rate_card", line: 12, message: 'no rate card named "platinum" is installed' },
        ],
      },
    });
    close();
  });

  test("GET pages by id", async () => {
    const { app, post, close } = setup();
    for (const consumer of ["org-b", "org-c", "org-d"]) await post(EXAMPLE_YAML.replace("consumer: org-b", `consumer: ${consumer}`));
    const page1 = (await (await app.request("/v1/agreements?limit=2")).json()) as { items: Agreement[]; next?: string };
    expect(page1.items).toHaveLength(2);
    const page2 = (await (await app.request(`/v1/agreements?limit=2&after=${page1.next}`)).json()) as { items: Agreement[]; next?: string };
    expect(page2.items).toHaveLength(1);
    expect(page2.next).toBeUndefined();
    expect(page2.items[0]!.id > page1.next!).toBe(true);
    expect((await app.request("/v1/agreements?limit=0")).status).toBe(400);
    close();
  });

  test("only admins may apply", async () => {
    const { post, close } = setup();
    expect((await post(EXAMPLE_YAML, "application/yaml", "member")).status).toBe(403);
    expect((await post(EXAMPLE_YAML, "application/yaml", "nobody")).status).toBe(403);
    close();
  });

  test("invoice as JSON and CSV; bad periods are 400", async () => {
    const { app, post, meter, close } = setup();
    const { agreement } = (await (await post(EXAMPLE_YAML)).json()) as { agreement: Agreement };
    meter.record({ id: "u1", agreementId: agreement.id, subtaskId: "t/0", at: Date.parse("2024-03-02T00:00:00Z"), cpuMilliCoreSeconds: 36_000_000, memoryByteSeconds: 0, transferBytes: 1e9 });
    const base = `/v1/agreements/${agreement.id}/invoice?from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z`;
    const inv = (await (await app.request(base)).json()) as { totalMinor: number; lines: { amountMinor: number }[] };
    expect(inv.lines.map((l) => l.amountMinor)).toEqual([40, 0, 2]);
    expect(inv.totalMinor).toBe(42);
    const csv = await app.request(`${base}&format=csv`);
    expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect((await csv.text()).trim().split("\n").at(-1)!.endsWith(",total,,,,,,42")).toBe(true);
    expect((await app.request(`/v1/agreements/${agreement.id}/invoice?from=2024-04-01&to=2024-03-01`)).status).toBe(400);
    expect((await app.request(`/v1/agreements/${agreement.id}/invoice?from=yesterday&to=2024-03-01`)).status).toBe(400);
    expect((await app.request(`${base}&format=pdf`)).status).toBe(400);
    close();
  });
});
