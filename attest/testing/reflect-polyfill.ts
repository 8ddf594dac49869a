/**
 * Test-only: @peculiar/x509 loads tsyringe, which demands a `reflect-metadata` polyfill. This minimal
 * one (only what tsyringe calls) lets tests use the generators without adding a dependency.
 */
const store = new WeakMap<object, Map<unknown, unknown>>();
const r = Reflect as unknown as Record<string, unknown>;
if (typeof r.getMetadata !== "function") {
  r.getOwnMetadata = (key: unknown, target: object) => store.get(target)?.get(key);
  r.getMetadata = (key: unknown, target: object) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const m = store.get(t);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  r.defineMetadata = (key: unknown, value: unknown, target: object) => {
    const m = store.get(target) ?? new Map();
    m.set(key, value);
    store.set(target, m);
  };
  r.hasMetadata = (key: unknown, target: object) => store.get(target)?.has(key) ?? false;
  r.metadata = (key: unknown, value: unknown) => (target: object) => (r.defineMetadata as Function)(key, value, target);
}
export {};
