/**
 * Linearizability checking of key-value histories (Wing & Gong search with
 * Lowe's memoisation, as in Porcupine). Operations on different keys commute,
 * so each key is checked on its own. The search has a step bound; a history
 * that exceeds it is reported "unknown", never "ok".
 */

export type KvInput =
  | { readonly kind: "get" }
  | { readonly kind: "put"; readonly value: string }
  | { readonly kind: "cas"; readonly expected: string | null; readonly value: string };

/** get: the value read; put: always ok; cas: whether it swapped. Absent: the outcome is unknown. */
export type KvOutput = { readonly value: string | null } | { readonly ok: boolean };

export interface Operation {
  readonly id: number;
  readonly client: number;
  readonly key: string;
  readonly input: KvInput;
  output?: KvOutput;
  /** Logical time of invocation and response; `ret` is Infinity when the outcome is unknown. */
  readonly call: number;
  ret: number;
}

export type Verdict = "ok" | "violation" | "unknown";

/** Default bound on search steps per key. */
export const checkStepsMax = 2_000_000;

interface Step {
  ok: boolean;
  next: string | null;
}

export function stepModel(state: string | null, op: Operation): Step {
  const { input, output } = op;
  switch (input.kind) {
    case "get":
      return { ok: output !== undefined && "value" in output && output.value === state, next: state };
    case "put":
      return { ok: true, next: input.value };
    case "cas": {
      const swaps = state === input.expected;
      if (output === undefined) return { ok: true, next: swaps ? input.value : state };
      const claimed = "ok" in output && output.ok;
      return { ok: claimed === swaps, next: swaps ? input.value : state };
    }
  }
}

interface ListNode {
  op: number;
  isCall: boolean;
  match: ListNode | null;
  prev: ListNode | null;
  next: ListNode | null;
}

/** Checks one key's history (all ops must share the key). Gets with unknown output must be left out. */
export function checkKey(ops: readonly Operation[], stepsMax = checkStepsMax): Verdict {
  if (ops.length === 0) return "ok";
  const events: { t: number; op: number; isCall: boolean }[] = [];
  ops.forEach((op, i) => {
    events.push({ t: op.call, op: i, isCall: true });
    events.push({ t: op.ret, op: i, isCall: false });
  });
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: ListNode = { op: -1, isCall: false, match: null, prev: null, next: null };
  const calls: ListNode[] = [];
  let tail = head;
  for (const e of events) {
    const n: ListNode = { op: e.op, isCall: e.isCall, match: null, prev: tail, next: null };
    tail.next = n;
    tail = n;
    if (e.isCall) calls[e.op] = n;
    else {
      const c = calls[e.op] as ListNode;
      c.match = n;
    }
  }
  const lift = (e: ListNode): void => {
    (e.prev as ListNode).next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match as ListNode;
    (m.prev as ListNode).next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (e: ListNode): void => {
    const m = e.match as ListNode;
    (m.prev as ListNode).next = m;
    if (m.next) m.next.prev = m;
    (e.prev as ListNode).next = e;
    if (e.next) e.next.prev = e;
  };

  const bits = new Uint32Array(Math.ceil(ops.length / 32));
  const flip = (i: number): void => {
    bits[i >>> 5] = (bits[i >>> 5] as number) ^ (1 << (i & 31));
  };
  const cache = new Set<string>();
  const stack: { entry: ListNode; state: string | null }[] = [];
  let state: string | null = null;
  let entry = head.next as ListNode;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > stepsMax) return "unknown";
    if (entry.isCall) {
      const r = stepModel(state, ops[entry.op] as Operation);
      if (r.ok) {
        flip(entry.op);
        const key = `${bits.join(",")}|${r.next === null ? "\u0000" : r.next}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ entry, state });
          state = r.next;
          lift(entry);
          entry = head.next as ListNode;
          continue;
        }
        flip(entry.op);
      }
      entry = entry.next as ListNode;
    } else {
      const top = stack.pop();
      if (!top) return "violation";
      state = top.state;
      flip(top.entry.op);
      unlift(top.entry);
      entry = top.entry.next as ListNode;
    }
  }
  return "ok";
}

export interface HistoryVerdict {
  verdict: Verdict;
  /** On violation: a small sub-history of one key that is still not linearizable. */
  witness?: Operation[];
  key?: string;
  unknownKeys: string[];
}

/** Checks a whole history key by key; on violation shrinks the failing key's history. */
export function checkHistory(history: readonly Operation[], stepsMax = checkStepsMax): HistoryVerdict {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    if (op.input.kind === "get" && op.output === undefined) continue; // a read with no answer constrains nothing
    let list = byKey.get(op.key);
    if (!list) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const unknownKeys: string[] = [];
  for (const [key, ops] of byKey) {
    const v = checkKey(ops, stepsMax);
    if (v === "violation") return { verdict: "violation", witness: shrink(ops, stepsMax), key, unknownKeys };
    if (v === "unknown") unknownKeys.push(key);
  }
  return { verdict: unknownKeys.length > 0 ? "unknown" : "ok", unknownKeys };
}

/** Removes operations while the history stays non-linearizable: shortest failing prefix, then one op at a time. */
export function shrink(ops: readonly Operation[], stepsMax = checkStepsMax): Operation[] {
  const fails = (h: readonly Operation[]): boolean => checkKey(h, stepsMax) === "violation";
  let cur = [...ops].sort((a, b) => a.call - b.call);
  let lo = 1;
  let hi = cur.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fails(cur.slice(0, mid))) hi = mid;
    else lo = mid + 1;
  }
  if (fails(cur.slice(0, hi))) cur = cur.slice(0, hi);
  for (let i = cur.length - 1; i >= 0; i--) {
    const candidate = cur.slice(0, i).concat(cur.slice(i + 1));
    if (candidate.length > 0 && fails(candidate)) cur = candidate;
  }
  return cur;
}

export function formatOperation(op: Operation): string {
  const inp =
    op.input.kind === "get"
      ? `get(${op.key})`
      : op.input.kind === "put"
        ? `put(${op.key}, ${op.input.value})`
        : `cas(${op.key}, ${String(op.input.expected)} -> ${op.input.value})`;
  const out = op.output === undefined ? "?" : "value" in op.output ? String(op.output.value) : String(op.output.ok);
  const ret = op.ret === Infinity ? "never" : String(op.ret);
  return `client ${op.client}: [${op.call}, ${ret}] ${inp} => ${out}`;
}
