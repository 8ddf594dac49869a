import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgreementInvalidError } from "./errors.ts";
import { agreementId, AgreementStore } from "./store.ts";
import { EXAMPLE_YAML } from "./testdata.ts";

const dirs: string[] = [];
function freshPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "grey-agreements-"));
  dirs.push(dir);
  return join(dir, "hub.db");
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("AgreementStore", () => {
  test("create, re-apply unchanged, update: versioned under a stable id", () => {
    const path = freshPath();
    const store = AgreementStore.open(path);
    const t0 = Date.parse("2024-03-01T00:00:00Z");
    const created = store.applyAgreement(EXAMPLE_YAML, t0);
    expect(created.change).toBe("created");
    expect(created.agreement.id).toBe(agreementId("org-a", "org-b"));
    expect(created.agreement.version).toBe(1);

    const again = store.applyAgreement(`# only a comment changed\n${EXAMPLE_YAML}`, t0 + 1000);
    expect(again.change).toBe("unchanged");
    expect(again.agreement.version).toBe(1);

    const updated = store.applyAgreement(EXAMPLE_YAML.replace('"1.5x"', '"2x"'), new Date(t0 + 2000));
    expect(updated.change).toBe("updated");
    expect(updated.agreement).toMatchObject({ version: 2, createdAt: "2024-03-01T00:00:00.000Z", updatedAt: "2024-03-01T00:00:02.000Z" });
    expect(updated.agreement.scheduling.maxBurstPermille).toBe(2000);
    store.close();

    const reopened = AgreementStore.open(path);
    expect(reopened.getAgreement(created.agreement.id)).toEqual(updated.agreement);
    expect(reopened.versions(created.agreement.id).map((v) => v.version)).toEqual([1, 2]);
    expect(reopened.versions(created.agreement.id)[0]!.source).toBe(EXAMPLE_YAML);
    expect(reopened.getAgreement("agr-0000000000000000")).toBeNull();
    reopened.close();
  });

  test("list is ordered by id; invalid documents change nothing", () => {
    const store = AgreementStore.open(freshPath());
    store.applyAgreement(EXAMPLE_YAML, 1);
    store.applyAgreement(EXAMPLE_YAML.replace("consumer: org-b", "consumer: org-c"), 2);
    expect(() => store.applyAgreement("agreement: {}", 3)).toThrow(AgreementInvalidError);
    const ids = store.listAgreements().map((a) => a.id);
    expect(ids).toHaveLength(2);
    expect([...ids].sort()).toEqual(ids);
    store.close();
  });
});
