import type { ExecutorComponents } from "../../sdk/executor.ts";

const noop = () => {};
export const testComponents: ExecutorComponents = { logger: { debug: noop, info: noop, warn: noop, error: noop } };
