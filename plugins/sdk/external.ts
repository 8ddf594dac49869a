/**
 * External plugins: one pre-bundled JavaScript file per plugin, loaded by the
 * compiled binaries at start with `--plugin FILE` (or the `plugins` list in the
 * config file).
 *
 * Build it with `bun build --target=bun index.ts --outfile my-plugin.js`. The
 * file runs inside the host process but cannot import packages the host
 * bundles (they are inside the executable): whatever it needs from the host
 * arrives in `components.host` (HostApi below). It may bundle its own
 * dependencies and may import SDK files (types vanish; small helpers get
 * bundled, which is why errors are matched by `name`/`code`).
 *
 * The file's default export is a PluginDefinition:
 *
 *   import type { PluginDefinition } from "grey-federation/plugins/sdk/external.ts";
 *   export default {
 *     apiVersion: 1, name: "connector-acme", kind: "connector",
 *     create: (components, options) => acmeConnector(options)(components),
 *   } satisfies PluginDefinition;
 *
 * Loading (plugins/host/loader.ts): import → default export shape → apiVersion
 * equals the host's PLUGIN_API_VERSION → create() → the catalog validates the
 * plugin object (kind-specific members) and, later, everything it returns.
 * Importing must have no side effects beyond defining things: no network, no
 * files, no timers (the host may import a plugin just to list it).
 */
import type { EvidenceBinding } from "./attestor.ts";
import type { HostComponents, PluginKind, PluginMeta } from "./plugin.ts";

/** Host functions handed to external plugins (they cannot import the host's copies). */
export interface HostApi {
  /** The host's PLUGIN_API_VERSION. */
  apiVersion: number;
  cbor: {
    encode(value: unknown): Uint8Array;
    /** Throws MalformedInputError / MessageTooLargeError (bounded by `limit` bytes). */
    decode(bytes: Uint8Array, limit?: number): unknown;
  };
  binding: {
    /** The framed binding message (sdk/binding.ts). */
    message(b: EvidenceBinding): Uint8Array;
    digest256(b: EvidenceBinding): Uint8Array;
    /** "grey:" + hex(sha256(message)): for audience-style fields. */
    audience(b: EvidenceBinding): string;
  };
  /** The host's typed error classes: throwing these keeps `instanceof` working in the host. */
  errors: HostErrors;
}

type E = typeof import("./errors.ts");
type C = typeof import("./connector.ts");
type K = typeof import("./kms.ts");
export interface HostErrors {
  GreyError: E["GreyError"];
  MalformedInputError: E["MalformedInputError"];
  UnauthorizedError: E["UnauthorizedError"];
  AttestationError: E["AttestationError"];
  PluginError: E["PluginError"];
  TimeoutError: E["TimeoutError"];
  ConnectorUnavailableError: C["ConnectorUnavailableError"];
  ConnectorResponseError: C["ConnectorResponseError"];
  KmsUnavailableError: K["KmsUnavailableError"];
  KmsRefusedError: K["KmsRefusedError"];
}

export interface ExternalComponents extends HostComponents {
  fetch: typeof fetch;
  host: HostApi;
}

export interface PluginDefinition<P extends PluginMeta = PluginMeta> {
  apiVersion: number;
  name: string;
  kind: PluginKind;
  /** `options` come from the config file entry (`{ "file": ..., "options": {...} }`), `{}` for --plugin. */
  create(components: ExternalComponents, options: Record<string, unknown>): P;
}
