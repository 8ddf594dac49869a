/**
 * EC2 instance metadata, IMDSv2 only: `PUT /latest/api/token` with
 * `X-aws-ec2-metadata-token-ttl-seconds`, then every GET carries
 * `X-aws-ec2-metadata-token`. A 401 (token expired or IMDS restarted) refreshes
 * the token once.
 */
import { ConnectorResponseError, platformFetch, type IoOptions } from "../sdk/connector.ts";
import { imdsTokenTtlSeconds } from "./constants.ts";

export class Imds {
  #token: { value: string; expiresAt: number } | undefined;
  /** One token request in flight at a time: concurrent GETs share it. */
  #pending: Promise<string> | undefined;

  constructor(private readonly endpoint: string, private readonly fetchFn: typeof fetch, private readonly now: () => number) {}

  async token(options: IoOptions = {}, refresh = false): Promise<string> {
    if (!refresh && this.#token && this.#token.expiresAt > this.now()) return this.#token.value;
    if (refresh) this.#token = undefined;
    this.#pending ??= this.#fetchToken(options).finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #fetchToken(options: IoOptions): Promise<string> {
    const url = `${this.endpoint}/latest/api/token`;
    const r = await platformFetch(this.fetchFn, "aws", url, { method: "PUT", headers: { "X-aws-ec2-metadata-token-ttl-seconds": String(imdsTokenTtlSeconds) } }, options);
    if (r.status !== 200) throw new ConnectorResponseError("aws", url, r.status, "IMDSv2 token refused");
    this.#token = { value: r.text().trim(), expiresAt: this.now() + (imdsTokenTtlSeconds - 60) * 1000 };
    return this.#token.value;
  }

  /** GET a metadata path; `undefined` on 404 (e.g. no public IPv4). */
  async get(path: string, options: IoOptions = {}): Promise<Uint8Array | undefined> {
    const url = `${this.endpoint}${path}`;
    for (const refresh of [false, true]) {
      const token = await this.token(options, refresh);
      const r = await platformFetch(this.fetchFn, "aws", url, { headers: { "X-aws-ec2-metadata-token": token } }, options);
      if (r.status === 200) return r.body;
      if (r.status === 404) return undefined;
      if (r.status !== 401 || refresh) throw new ConnectorResponseError("aws", url, r.status, "IMDS refused the request");
    }
    return undefined;
  }

  async text(path: string, options: IoOptions = {}): Promise<string | undefined> {
    const b = await this.get(path, options);
    return b === undefined ? undefined : new TextDecoder().decode(b).trim();
  }

  async require(path: string, options: IoOptions = {}): Promise<Uint8Array> {
    const b = await this.get(path, options);
    if (!b) throw new ConnectorResponseError("aws", `${this.endpoint}${path}`, 404, "not found");
    return b;
  }
}
