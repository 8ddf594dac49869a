/**
 * @peculiar/x509 uses tsyringe, which refuses to load without a Reflect
 * metadata polyfill. It only needs these three functions; this installs them
 * when absent. Import this module before "@peculiar/x509" (x509.ts does).
 */
type MetaMap = Map<unknown, unknown>;
const store = new WeakMap<object, Map<string | symbol | undefined, MetaMap>>();

function metaFor(target: object, prop: string | symbol | undefined, create: boolean): MetaMap | undefined {
  let byProp = store.get(target);
  if (!byProp) {
    if (!create) return undefined;
    byProp = new Map();
    store.set(target, byProp);
  }
  let meta = byProp.get(prop);
  if (!meta && create) {
    meta = new Map();
    byProp.set(prop, meta);
  }
  return meta;
}

const R = Reflect as unknown as Record<string, unknown>;
if (typeof R.getMetadata !== "function") {
  const getOwnMetadata = (key: unknown, target: object, prop?: string | symbol) => metaFor(target, prop, false)?.get(key);
  R.defineMetadata = (key: unknown, value: unknown, target: object, prop?: string | symbol) => {
    metaFor(target, prop, true)!.set(key, value);
  };
  R.getOwnMetadata = getOwnMetadata;
  R.getMetadata = (key: unknown, target: object, prop?: string | symbol) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const v = getOwnMetadata(key, t, prop);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}

export {};
