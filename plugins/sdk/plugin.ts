/**
 * What every plugin is: a factory `(init) => (components) => Plugin`.
 * `init` holds the user's options (defaults from the plugin's constants.ts);
 * `components` are the few host services the plugin uses, injected by the host.
 */

/** The plugin API this host implements. A plugin built for another major is refused at load. */
export const PLUGIN_API_VERSION = 1;

export type PluginKind = "attestor" | "connector" | "executor" | "consensus" | "kms";

export interface PluginMeta {
  /** Unique, stable name, e.g. "attestor-dev". */
  readonly name: string;
  readonly kind: PluginKind;
  readonly apiVersion: number;
}

/** Minimal structured logger handed to plugins. Never pass secrets to it. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface Clock {
  now(): number;
}

/** Host services a plugin may receive. Each plugin declares the subset it needs. */
export interface HostComponents {
  logger: Logger;
  clock: Clock;
}

/** How many plugins of each kind may be active in one process. */
export const PLUGIN_CARDINALITY: Record<PluginKind, { min: number; max: number }> = {
  attestor: { min: 1, max: 32 },
  connector: { min: 0, max: 32 },
  executor: { min: 0, max: 32 },
  consensus: { min: 0, max: 1 },
  kms: { min: 0, max: 8 },
};
