/**
 * The user-facing agreement document (YAML, or JSON which is YAML too) resolved
 * into a validated internal `AgreementTerms`. Every problem is reported at once,
 * each with its dotted field path and 1-based line number.
 *
 *   agreement:
 *     provider: org-a
 *     consumer: org-b
 *     resources:
 *       cpu:    { limit: "1000 cores", priority: high }
 *       memory: { limit: "4 TB",       priority: medium }
 *     scheduling: { preemption: true, max_burst: "1.5x" }
 *     billing:    { model: pay-per-use, rate_card: standard-2024 }
 */
import { isMap, isScalar, LineCounter, parseDocument, type Node, type YAMLMap } from "yaml";
import { IdSchema } from "../../plugins/sdk/wire.ts";
import {
  agreementDocumentBytesMax,
  agreementProblemsMax,
  burstPermilleDefault,
  burstPermilleMax,
  burstPermilleMin,
  cpuMilliCoresMax,
  memoryBytesMax,
} from "./constants.ts";
import { AgreementInvalidError, type AgreementProblem } from "./errors.ts";
import { parseBurst, parseBytes, parseCpu, type Parsed } from "./units.ts";

export const PRIORITIES = ["low", "medium", "high"] as const;
export type Priority = (typeof PRIORITIES)[number];
export const BILLING_MODELS = ["pay-per-use"] as const;
export type BillingModel = (typeof BILLING_MODELS)[number];
export const DEFAULT_PRIORITY: Priority = "medium";

/** What an agreement says, in integer base units. */
export type AgreementTerms = {
  provider: string;
  consumer: string;
  resources: {
    cpu?: { limitMilliCores: number; priority: Priority };
    memory?: { limitBytes: number; priority: Priority };
  };
  scheduling: { preemption: boolean; maxBurstPermille: number };
  billing: { model: BillingModel; rateCard: string };
};

export type ParseOptions = {
  /** When given, `billing.rate_card` must name a rate card this returns true for. */
  rateCardExists?: (id: string) => boolean;
};

type Fields = Record<string, { required: boolean }>;

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Collects problems and turns node offsets into line numbers. */
class Checker {
  readonly problems: AgreementProblem[] = [];
  constructor(private readonly lines: LineCounter) {}

  lineOf(node: Node | null | undefined): number | null {
    const offset = node?.range?.[0];
    return offset === undefined ? null : this.lines.linePos(offset).line;
  }

  problem(path: string, node: Node | null | undefined, message: string, fallback: Node | null | undefined = undefined): void {
    this.problems.push({ path, line: this.lineOf(node) ?? this.lineOf(fallback), message });
  }

  /** The map's values by key; reports a non-map, unknown keys and missing required keys. */
  fields(node: Node | null | undefined, path: string, spec: Fields, parent?: Node | null): Map<string, Node | null> | null {
    const out = new Map<string, Node | null>();
    if (!isMap(node)) {
      this.problem(path, node, node == null ? "is required" : "must be a mapping", parent);
      return null;
    }
    const keyNodes = new Map<string, Node | null>();
    for (const pair of (node as YAMLMap<unknown, unknown>).items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : null;
      if (key === null || !(key in spec)) {
        const where = key === null ? path : join(path, key);
        this.problem(where, keyNode, `unknown field${key === null ? "" : ` "${key}"`} (expected ${Object.keys(spec).join(", ")})`, node);
        continue;
      }
      const value = (pair.value as Node | null) ?? null;
      keyNodes.set(key, keyNode);
      // `key:` with nothing after it counts as absent.
      if (!(isScalar(value) && value.value === null)) out.set(key, value);
    }
    for (const [key, { required }] of Object.entries(spec)) {
      if (required && !out.has(key)) this.problem(join(path, key), keyNodes.get(key), "is required", node);
    }
    return out;
  }

  /** The scalar's value; undefined (reported unless the field was absent, already reported) otherwise. */
  scalar(node: Node | null | undefined, path: string): unknown {
    if (node == null) return undefined;
    if (!isScalar(node)) {
      this.problem(path, node, "must be a single value");
      return undefined;
    }
    return node.value;
  }

  id(node: Node | null | undefined, path: string): string | undefined {
    const v = this.scalar(node, path);
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !IdSchema.safeParse(v).success) {
      this.problem(path, node, "must be an id: lowercase letters, digits and '-', at most 63");
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(node: Node | null | undefined, path: string, allowed: readonly T[]): T | undefined {
    const v = this.scalar(node, path);
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !allowed.includes(v as T)) {
      this.problem(path, node, `must be one of ${allowed.join(", ")} (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return v as T;
  }

  quantity(node: Node | null | undefined, path: string, parse: (input: string | number) => Parsed): number | undefined {
    const v = this.scalar(node, path);
    if (v === undefined) return undefined;
    if (typeof v !== "string" && typeof v !== "number") {
      this.problem(path, node, "must be a quantity such as \"1000 cores\", \"4 TB\" or \"1.5x\"");
      return undefined;
    }
    const parsed = parse(v);
    if (!parsed.ok) this.problem(path, node, parsed.message);
    return parsed.ok ? parsed.value : undefined;
  }
}

const TOP: Fields = { agreement: { required: true } };
const AGREEMENT: Fields = {
  provider: { required: true },
  consumer: { required: true },
  resources: { required: true },
  scheduling: { required: false },
  billing: { required: true },
};
const RESOURCES: Fields = { cpu: { required: false }, memory: { required: false } };
const RESOURCE: Fields = { limit: { required: true }, priority: { required: false } };
const SCHEDULING: Fields = { preemption: { required: false }, max_burst: { required: false } };
const BILLING: Fields = { model: { required: true }, rate_card: { required: true } };

/** Parse and validate; throws `AgreementInvalidError` listing every problem. */
export function parseAgreement(text: string, options: ParseOptions = {}): AgreementTerms {
  const size = Buffer.byteLength(text, "utf8");
  if (size > agreementDocumentBytesMax) {
    throw new AgreementInvalidError([{ path: "", line: null, message: `document of ${size} bytes exceeds ${agreementDocumentBytesMax} bytes` }]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw invalid(doc.errors.map((e) => ({ path: "", line: lines.linePos(e.pos[0]).line, message: e.message.split("\n")[0]! })));
  }
  const check = new Checker(lines);
  const terms = resolve(check, doc.contents as Node | null, options);
  if (check.problems.length > 0 || terms === null) throw invalid(check.problems);
  return terms;
}

function invalid(unsorted: AgreementProblem[]): AgreementInvalidError {
  const problems = [...unsorted].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  if (problems.length <= agreementProblemsMax) return new AgreementInvalidError(problems);
  const kept = problems.slice(0, agreementProblemsMax - 1);
  return new AgreementInvalidError([...kept, { path: "", line: null, message: `... and ${problems.length - kept.length} more problems` }]);
}

function resolve(check: Checker, root: Node | null, options: ParseOptions): AgreementTerms | null {
  const top = check.fields(root, "", TOP);
  const a = top?.has("agreement") ? check.fields(top.get("agreement"), "agreement", AGREEMENT, root) : null;
  if (!a) return null;

  const provider = check.id(a.get("provider"), "agreement.provider");
  const consumer = check.id(a.get("consumer"), "agreement.consumer");
  if (provider !== undefined && provider === consumer) {
    check.problem("agreement.consumer", a.get("consumer"), "must differ from the provider");
  }

  const resources = resolveResources(check, a.get("resources"));
  const scheduling = resolveScheduling(check, a.get("scheduling") ?? null);

  const billingFields = a.has("billing") ? check.fields(a.get("billing"), "agreement.billing", BILLING) : null;
  const model = billingFields && check.oneOf(billingFields.get("model"), "agreement.billing.model", BILLING_MODELS);
  const rateCard = billingFields && check.id(billingFields.get("rate_card"), "agreement.billing.rate_card");
  if (rateCard && options.rateCardExists && !options.rateCardExists(rateCard)) {
    check.problem("agreement.billing.rate_card", billingFields!.get("rate_card"), `no rate card named "${rateCard}" is installed`);
  }

  if (!provider || !consumer || !resources || !scheduling || !model || !rateCard) return null;
  return { provider, consumer, resources, scheduling, billing: { model, rateCard } };
}

function resolveResources(check: Checker, node: Node | null | undefined): AgreementTerms["resources"] | null {
  if (node === undefined) return null; // reported as missing already
  const fields = check.fields(node, "agreement.resources", RESOURCES);
  if (!fields) return null;
  if (fields.size === 0) {
    check.problem("agreement.resources", node, `must list at least one resource (${Object.keys(RESOURCES).join(", ")})`);
    return null;
  }
  const out: AgreementTerms["resources"] = {};
  let ok = true;
  for (const [kind, value] of fields) {
    const path = `agreement.resources.${kind}`;
    const f = check.fields(value, path, RESOURCE, node);
    if (!f) {
      ok = false;
      continue;
    }
    const priority = f.has("priority") ? check.oneOf(f.get("priority"), `${path}.priority`, PRIORITIES) : DEFAULT_PRIORITY;
    const limitNode = f.get("limit");
    const limit =
      limitNode == null
        ? undefined
        : kind === "cpu"
          ? check.quantity(limitNode, `${path}.limit`, (v) => parseCpu(v, cpuMilliCoresMax))
          : check.quantity(limitNode, `${path}.limit`, (v) => parseBytes(v, memoryBytesMax));
    if (priority === undefined || limit === undefined) {
      ok = false;
      continue;
    }
    if (kind === "cpu") out.cpu = { limitMilliCores: limit, priority };
    else out.memory = { limitBytes: limit, priority };
  }
  return ok ? out : null;
}

function resolveScheduling(check: Checker, node: Node | null): AgreementTerms["scheduling"] | null {
  if (node === null) return { preemption: false, maxBurstPermille: burstPermilleDefault };
  const f = check.fields(node, "agreement.scheduling", SCHEDULING);
  if (!f) return null;
  let preemption: boolean | undefined = false;
  if (f.has("preemption")) {
    const v = check.scalar(f.get("preemption"), "agreement.scheduling.preemption");
    if (typeof v === "boolean") preemption = v;
    else {
      preemption = undefined;
      if (v !== undefined) check.problem("agreement.scheduling.preemption", f.get("preemption"), "must be true or false");
    }
  }
  const burst = f.has("max_burst")
    ? check.quantity(f.get("max_burst"), "agreement.scheduling.max_burst", (v) => parseBurst(v, burstPermilleMin, burstPermilleMax))
    : burstPermilleDefault;
  if (preemption === undefined || burst === undefined) return null;
  return { preemption, maxBurstPermille: burst };
}
