import { describe, expect, test } from "bun:test";
import { AgreementInvalidError, type AgreementProblem } from "./errors.ts";
import { parseAgreement } from "./parse.ts";
import { EXAMPLE_YAML } from "./testdata.ts";

function problems(text: string, options = {}): AgreementProblem[] {
  try {
    parseAgreement(text, options);
  } catch (e) {
    expect(e).toBeInstanceOf(AgreementInvalidError);
    return [...(e as AgreementInvalidError).problems];
  }
  throw new Error("expected AgreementInvalidError");
}

describe("parseAgreement", () => {
  test("the documented example resolves to integer base units", () => {
    expect(parseAgreement(EXAMPLE_YAML)).toEqual({
      provider: "org-a",
      consumer: "org-b",
      resources: { cpu: { limitMilliCores: 1_000_000, priority: "high" }, memory: { limitBytes: 4e12, priority: "medium" } },
      scheduling: { preemption: true, maxBurstPermille: 1500 },
      billing: { model: "pay-per-use", rateCard: "standard-2024" },
    });
  });

  test("JSON is accepted too", () => {
    const json = JSON.stringify({
      agreement: { provider: "org-a", consumer: "org-c", resources: { cpu: { limit: "500m" } }, billing: { model: "pay-per-use", rate_card: "standard-2024" } },
    });
    const t = parseAgreement(json);
    expect(t.resources.cpu).toEqual({ limitMilliCores: 500, priority: "medium" });
    expect(t.scheduling).toEqual({ preemption: false, maxBurstPermille: 1000 });
  });

  test("a bad document reports every problem with path and line", () => {
    const bad = [
      "agreement:", //                                    1
      "  provider: Org_A", //                             2
      "  consumer:", //                                   3
      "  resources:", //                                  4
      '    cpu:    { limit: "10 kores", priority: urgent }', // 5
      '    memory: { limit: "4", priority: medium }', //  6
      "    gpu: { limit: 2 }", //                         7
      "  scheduling:", //                                 8
      "    premption: true", //                           9
      '    max_burst: "0.5x"', //                         10
      "  billing:", //                                    11
      "    model: free", //                               12
      "",
    ].join("\n");
    expect(problems(bad).map((p) => [p.path, p.line])).toEqual([
      ["agreement.provider", 2],
      ["agreement.consumer", 3],
      ["agreement.resources.cpu.priority", 5],
      ["agreement.resources.cpu.limit", 5],
      ["agreement.resources.memory.limit", 6],
      ["agreement.resources.gpu", 7],
      ["agreement.scheduling.premption", 9],
      ["agreement.scheduling.max_burst", 10],
      ["agreement.billing.rate_card", 12],
      ["agreement.billing.model", 12],
    ]);
  });

  test("YAML syntax errors carry a line", () => {
    const [p] = problems("agreement:\n  provider: org-a\n  consumer: [org-b\n");
    expect(p!.line).toBeGreaterThanOrEqual(3);
  });

  test("provider and consumer must differ; at least one resource", () => {
    const doc = `agreement:\n  provider: org-a\n  consumer: org-a\n  resources: {}\n  billing: { model: pay-per-use, rate_card: standard-2024 }\n`;
    expect(problems(doc).map((p) => [p.path, p.line])).toEqual([
      ["agreement.consumer", 3],
      ["agreement.resources", 4],
    ]);
  });

  test("unknown rate card is a problem at its line", () => {
    const p = problems(EXAMPLE_YAML, { rateCardExists: () => false });
    expect(p).toEqual([{ path: "agreement.billing.rate_card", line: 12, message: 'no rate card named "standard-2024" is installed' }]);
  });

  test("not a mapping, missing root", () => {
    expect(problems("- 1\n- 2\n")[0]).toMatchObject({ path: "", message: "must be a mapping" });
    expect(problems("other: 1\n").map((p) => p.path)).toEqual(["other", "agreement"]);
  });
});
