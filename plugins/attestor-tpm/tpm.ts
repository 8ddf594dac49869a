/**
 * A TPM 2.0 client that marshals commands itself and talks to a TpmTransport. One command is in
 * flight at a time (commands are queued); each round trip is bounded by `readTimeoutMs` and by the
 * caller's AbortSignal. Every TPM error code becomes a TpmError; every unparsable response too.
 *
 * No parameter encryption and no HMAC sessions: the password session (empty auth) and unsalted,
 * unbound policy sessions are all the attestation flows need.
 */
import { nvIndexBytesMax, nvReadChunkBytes, tpmCommandBytesMax, tpmReadTimeoutMsDefault, tpmRetriesMax, tpmRetryDelayMs } from "./constants.ts";
import { TpmError } from "./errors.ts";
import { TpmReader, TpmWriter } from "./marshal.ts";
import { TPM_RC } from "./rc.ts";
import { TPM_ALG, TPM_CC, TPM_RH, TPM_SE, TPM_ST, TPM_SU, hashAlgs, type HashName } from "./spec.ts";
import type { TpmTransport } from "./transport.ts";

export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** One entry of a command's authorization area. */
export interface AuthSession {
  readonly handle: number;
  readonly nonceCaller?: Uint8Array;
  readonly attributes?: number;
  /** HMAC, or the password for TPM_RS_PW. */
  readonly hmac?: Uint8Array;
}

/** The password pseudo-session with an empty password (the default auth of hierarchies and our keys). */
export const passwordSession: AuthSession = { handle: TPM_RH.PW };

export interface PcrSelection {
  readonly hash: HashName;
  readonly pcrs: readonly number[];
}

export interface LoadedObject {
  readonly handle: number;
  /** TPMT_PUBLIC (the contents of TPM2B_PUBLIC). */
  readonly publicArea: Uint8Array;
  /** TPM2B_NAME contents: nameAlg || H(publicArea). */
  readonly name: Uint8Array;
}

interface CommandSpec {
  readonly name: keyof typeof TPM_CC;
  readonly handles?: readonly number[];
  readonly sessions?: readonly AuthSession[];
  readonly params?: (w: TpmWriter) => void;
  readonly responseHandles?: number;
}

interface Response {
  readonly handles: number[];
  readonly params: TpmReader;
}

export interface TpmInit {
  readonly transport: TpmTransport;
  readonly readTimeoutMs?: number;
  readonly commandBytesMax?: number;
}

const empty = new Uint8Array(0);
const retryableRcs = [TPM_RC.RETRY, TPM_RC.YIELDED, TPM_RC.TESTING];
const pcrSelectBytes = 3;

export function marshalPcrSelection(w: TpmWriter, selections: readonly PcrSelection[]): void {
  w.u32(selections.length);
  for (const s of selections) {
    const bits = new Uint8Array(pcrSelectBytes);
    for (const pcr of s.pcrs) {
      if (!Number.isInteger(pcr) || pcr < 0 || pcr >= pcrSelectBytes * 8) throw new RangeError(`PCR index ${pcr}`);
      bits[pcr >> 3]! |= 1 << (pcr & 7);
    }
    w.u16(hashAlgs[s.hash].alg).u8(pcrSelectBytes).bytes(bits);
  }
}

export function parsePcrSelection(r: TpmReader): { alg: number; pcrs: number[] }[] {
  const count = r.u32();
  if (count > 16) throw new TpmError("malformed-response", `TPML_PCR_SELECTION count ${count}`);
  const out: { alg: number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const alg = r.u16();
    const bits = r.bytes(r.u8());
    const pcrs: number[] = [];
    bits.forEach((b, byte) => {
      for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) pcrs.push(byte * 8 + bit);
    });
    out.push({ alg, pcrs });
  }
  return out;
}

export class Tpm {
  private readonly transport: TpmTransport;
  private readonly readTimeoutMs: number;
  private readonly commandBytesMax: number;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(init: TpmInit) {
    this.transport = init.transport;
    this.readTimeoutMs = init.readTimeoutMs ?? tpmReadTimeoutMsDefault;
    this.commandBytesMax = init.commandBytesMax ?? tpmCommandBytesMax;
  }

  async close(): Promise<void> {
    await this.tail.catch(() => {});
    await this.transport.close();
  }

  /** Marshal, send (queued behind any command in flight), and parse the response envelope. */
  private execute(spec: CommandSpec, options: CallOptions = {}): Promise<Response> {
    const run = this.tail.then(() => this.roundTripRetrying(spec, options));
    this.tail = run.catch(() => {});
    return run;
  }

  /**
   * TPM_RC_RETRY / YIELDED / TESTING mean "not now, send it again" (a TPM running a self test of the
   * algorithm on first use answers RETRY): resend a bounded number of times, then surface the warning.
   */
  private async roundTripRetrying(spec: CommandSpec, options: CallOptions): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.roundTrip(spec, options);
      } catch (err) {
        const again = err instanceof TpmError && retryableRcs.some((rc) => err.is(rc));
        if (!again || attempt >= tpmRetriesMax) throw err;
        await Bun.sleep(tpmRetryDelayMs * attempt);
      }
    }
  }

  private async roundTrip(spec: CommandSpec, options: CallOptions): Promise<Response> {
    const sessions = spec.sessions ?? [];
    const w = new TpmWriter(this.commandBytesMax);
    w.u16(sessions.length ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS).u32(0).u32(TPM_CC[spec.name]);
    for (const h of spec.handles ?? []) w.u32(h);
    if (sessions.length) {
      const sizeAt = w.length;
      w.u32(0);
      for (const s of sessions) {
        w.u32(s.handle).tpm2b(s.nonceCaller).u8(s.attributes ?? 0).tpm2b(s.hmac);
      }
      w.patchU32(sizeAt, w.length - sizeAt - 4);
    }
    spec.params?.(w);
    w.patchU32(2, w.length);

    const timeout = AbortSignal.timeout(this.readTimeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let raw: Uint8Array;
    try {
      raw = await this.transport.transmit(w.finish(), { signal });
    } catch (err) {
      if (err instanceof TpmError && err.kind === "timeout" && timeout.aborted) {
        throw new TpmError("timeout", `no response within ${this.readTimeoutMs} ms`, { command: spec.name, cause: err });
      }
      throw err;
    }
    return parseResponse(raw, spec, sessions.length);
  }

  // ---- commands ---------------------------------------------------------------------------------

  async startup(type: "clear" | "state" = "clear", options?: CallOptions): Promise<void> {
    const su = type === "clear" ? TPM_SU.CLEAR : TPM_SU.STATE;
    (await this.execute({ name: "Startup", params: (w) => w.u16(su) }, options)).params.end();
  }

  /** TPM2_Startup(CLEAR) unless the TPM is already started (the normal case on a booted machine). */
  async ensureStarted(options?: CallOptions): Promise<void> {
    try {
      await this.startup("clear", options);
    } catch (err) {
      if (!(err instanceof TpmError && err.is(TPM_RC.INITIALIZE))) throw err;
    }
  }

  async getRandom(bytes: number, options?: CallOptions): Promise<Uint8Array> {
    const out = new Uint8Array(bytes);
    for (let have = 0; have < bytes; ) {
      const want = Math.min(bytes - have, 64);
      const r = (await this.execute({ name: "GetRandom", params: (w) => w.u16(want) }, options)).params;
      const chunk = r.tpm2b();
      r.end();
      if (chunk.length === 0 || chunk.length > want) {
        throw new TpmError("malformed-response", `GetRandom returned ${chunk.length} of ${want} bytes`, { command: "GetRandom" });
      }
      out.set(chunk, have);
      have += chunk.length;
    }
    return out;
  }

  /**
   * TPM2_PCR_Read for one bank. The TPM returns at most 8 digests per call, so this loops; if the
   * PCR update counter moves between calls the values are not a consistent snapshot and it starts over.
   * (Extends of PCR 16 and 21-23 do not move the counter; collectQuote's digest check covers those.)
   */
  async pcrRead(selection: PcrSelection, options?: CallOptions): Promise<{ updateCounter: number; values: Map<number, Uint8Array> }> {
    const digestBytes = hashAlgs[selection.hash].bytes;
    for (let attempt = 0; attempt < 3; attempt++) {
      const values = new Map<number, Uint8Array>();
      let counter: number | undefined;
      let consistent = true;
      while (values.size < selection.pcrs.length && consistent) {
        const wanted = selection.pcrs.filter((p) => !values.has(p));
        const r = (await this.execute({ name: "PCR_Read", params: (w) => marshalPcrSelection(w, [{ hash: selection.hash, pcrs: wanted }]) }, options)).params;
        const updateCounter = r.u32();
        const returned = parsePcrSelection(r).flatMap((s) => (s.alg === hashAlgs[selection.hash].alg ? s.pcrs : []));
        const digestCount = r.u32();
        if (digestCount > 8) throw new TpmError("malformed-response", `TPML_DIGEST count ${digestCount}`, { command: "PCR_Read" });
        const digests = Array.from({ length: digestCount }, () => r.tpm2b());
        r.end();
        if (digests.length !== returned.length || digests.length === 0 || digests.some((d) => d.length !== digestBytes) || returned.some((p) => !wanted.includes(p))) {
          throw new TpmError("malformed-response", `PCR_Read returned ${digests.length} digests for selection [${returned}]`, { command: "PCR_Read" });
        }
        if (counter !== undefined && counter !== updateCounter) consistent = false;
        counter = updateCounter;
        returned.forEach((p, i) => values.set(p, digests[i]!));
      }
      if (consistent) return { updateCounter: counter!, values };
    }
    throw new TpmError("response-code", "PCRs kept changing while being read", { command: "PCR_Read", rc: TPM_RC.PCR_CHANGED });
  }

  async pcrExtend(pcr: number, digests: readonly { hash: HashName; digest: Uint8Array }[], options?: CallOptions): Promise<void> {
    for (const d of digests) {
      if (d.digest.length !== hashAlgs[d.hash].bytes) throw new RangeError(`${d.hash} digest must be ${hashAlgs[d.hash].bytes} bytes`);
    }
    const r = (
      await this.execute(
        {
          name: "PCR_Extend",
          handles: [pcr],
          sessions: [passwordSession],
          params: (w) => {
            w.u32(digests.length);
            for (const d of digests) w.u16(hashAlgs[d.hash].alg).bytes(d.digest);
          },
        },
        options,
      )
    ).params;
    r.end();
  }

  /** TPM2_CreatePrimary with an empty auth value and no creation PCRs. */
  async createPrimary(hierarchy: number, template: Uint8Array, options?: CallOptions): Promise<LoadedObject> {
    const res = await this.execute(
      {
        name: "CreatePrimary",
        handles: [hierarchy],
        sessions: [passwordSession],
        params: (w) => writeCreateParams(w, template),
        responseHandles: 1,
      },
      options,
    );
    const r = res.params;
    const publicArea = r.tpm2b();
    skipCreationOutputs(r);
    const name = r.tpm2b();
    r.end();
    return { handle: res.handles[0]!, publicArea, name };
  }

  /** TPM2_Create: a child of `parent`, returned as its (private, public) blobs for TPM2_Load. */
  create(parent: number, parentAuth: AuthSession, template: Uint8Array, options?: CallOptions): Promise<{ privateBlob: Uint8Array; publicArea: Uint8Array }> {
    return this.#create(parent, parentAuth, template, undefined, options);
  }

  /** TPM2_Create of a sealed data object (keyedhash template) holding `data`; unseal() after load() returns it. */
  createSealed(parent: number, parentAuth: AuthSession, template: Uint8Array, data: Uint8Array, options?: CallOptions): Promise<{ privateBlob: Uint8Array; publicArea: Uint8Array }> {
    return this.#create(parent, parentAuth, template, data, options);
  }

  async #create(parent: number, parentAuth: AuthSession, template: Uint8Array, data: Uint8Array | undefined, options?: CallOptions): Promise<{ privateBlob: Uint8Array; publicArea: Uint8Array }> {
    const r = (
      await this.execute(
        { name: "Create", handles: [parent], sessions: [parentAuth], params: (w) => writeCreateParams(w, template, data) },
        options,
      )
    ).params;
    const privateBlob = r.tpm2b();
    const publicArea = r.tpm2b();
    skipCreationOutputs(r);
    r.end();
    return { privateBlob, publicArea };
  }

  /** TPM2_Unseal: the data of a loaded sealed object. */
  async unseal(handle: number, auth: AuthSession, options?: CallOptions): Promise<Uint8Array> {
    const r = (await this.execute({ name: "Unseal", handles: [handle], sessions: [auth] }, options)).params;
    const data = r.tpm2b();
    r.end();
    return data;
  }

  async load(parent: number, parentAuth: AuthSession, privateBlob: Uint8Array, publicArea: Uint8Array, options?: CallOptions): Promise<LoadedObject> {
    const res = await this.execute(
      {
        name: "Load",
        handles: [parent],
        sessions: [parentAuth],
        params: (w) => w.tpm2b(privateBlob).tpm2b(publicArea),
        responseHandles: 1,
      },
      options,
    );
    const name = res.params.tpm2b();
    res.params.end();
    return { handle: res.handles[0]!, publicArea, name };
  }

  async readPublic(handle: number, options?: CallOptions): Promise<LoadedObject> {
    const r = (await this.execute({ name: "ReadPublic", handles: [handle] }, options)).params;
    const publicArea = r.tpm2b();
    const name = r.tpm2b();
    r.tpm2b(); // qualifiedName
    r.end();
    return { handle, publicArea, name };
  }

  async flushContext(handle: number, options?: CallOptions): Promise<void> {
    (await this.execute({ name: "FlushContext", params: (w) => w.u32(handle) }, options)).params.end();
  }

  /** TPM2_NV_ReadPublic: the index's data size and attributes (TPM_RC_HANDLE when it is not defined). */
  async nvReadPublic(nvIndex: number, options?: CallOptions): Promise<{ dataSize: number; attributes: number }> {
    const r = (await this.execute({ name: "NV_ReadPublic", handles: [nvIndex] }, options)).params;
    const pub = new TpmReader(r.tpm2b(), "TPMS_NV_PUBLIC");
    r.tpm2b(); // nvName
    r.end();
    pub.u32(); // nvIndex
    pub.u16(); // nameAlg
    const attributes = pub.u32();
    pub.tpm2b(); // authPolicy
    const dataSize = pub.u16();
    pub.end();
    return { dataSize, attributes };
  }

  /**
   * Read a whole NV index in chunks, authorised by the index itself (TPMA_NV_AUTHREAD, empty
   * password) — how EK certificate indices are readable by anyone.
   */
  async nvRead(nvIndex: number, options?: CallOptions): Promise<Uint8Array> {
    const { dataSize } = await this.nvReadPublic(nvIndex, options);
    if (dataSize > nvIndexBytesMax) throw new TpmError("too-large", `NV index 0x${nvIndex.toString(16)} holds ${dataSize} bytes (limit ${nvIndexBytesMax})`, { command: "NV_Read" });
    const out = new Uint8Array(dataSize);
    for (let off = 0; off < dataSize; ) {
      const size = Math.min(nvReadChunkBytes, dataSize - off);
      const r = (await this.execute({ name: "NV_Read", handles: [nvIndex, nvIndex], sessions: [passwordSession], params: (w) => w.u16(size).u16(off) }, options)).params;
      const chunk = r.tpm2b();
      r.end();
      if (chunk.length !== size) throw new TpmError("malformed-response", `NV_Read returned ${chunk.length} bytes, asked ${size}`, { command: "NV_Read" });
      out.set(chunk, off);
      off += size;
    }
    return out;
  }

  /** An unbound, unsalted policy session with SHA-256 policy digest. */
  async startPolicySession(options?: CallOptions): Promise<{ handle: number; nonceTpm: Uint8Array }> {
    const nonceCaller = crypto.getRandomValues(new Uint8Array(32));
    const res = await this.execute(
      {
        name: "StartAuthSession",
        handles: [TPM_RH.NULL, TPM_RH.NULL],
        params: (w) => w.tpm2b(nonceCaller).tpm2b(empty).u8(TPM_SE.POLICY).u16(TPM_ALG.NULL).u16(TPM_ALG.SHA256),
        responseHandles: 1,
      },
      options,
    );
    const nonceTpm = res.params.tpm2b();
    res.params.end();
    return { handle: res.handles[0]!, nonceTpm };
  }

  /** TPM2_PolicySecret(authHandle) with the entity's (empty) password, no expiration. */
  async policySecret(authHandle: number, policySession: number, options?: CallOptions): Promise<void> {
    const r = (
      await this.execute(
        {
          name: "PolicySecret",
          handles: [authHandle, policySession],
          sessions: [passwordSession],
          params: (w) => w.tpm2b(empty).tpm2b(empty).tpm2b(empty).u32(0),
        },
        options,
      )
    ).params;
    r.tpm2b(); // timeout
    r.u16(); // policyTicket.tag
    r.u32(); // policyTicket.hierarchy
    r.tpm2b(); // policyTicket.digest
    r.end();
  }

  /**
   * Run `use` with a fresh policy session satisfying PolicySecret(TPM_RH_ENDORSEMENT) — the authPolicy
   * of the TCG default EK templates. The session is flushed afterwards whatever happens.
   */
  async withEndorsementPolicy<T>(use: (session: AuthSession) => Promise<T>, options?: CallOptions): Promise<T> {
    const { handle } = await this.startPolicySession(options);
    try {
      await this.policySecret(TPM_RH.ENDORSEMENT, handle, options);
      // continueSession is clear: a successful command closes the session inside the TPM.
      return await use({ handle, attributes: 0 });
    } catch (err) {
      // A failed command leaves the session loaded; swtpm without a resource manager would run out.
      await this.flushContext(handle, options).catch(() => {});
      throw err;
    }
  }

  /** TPM2_Quote with the key's own signing scheme. Returns TPM2B_ATTEST contents and TPMT_SIGNATURE. */
  async quote(akHandle: number, qualifyingData: Uint8Array, selection: PcrSelection, options?: CallOptions): Promise<{ attest: Uint8Array; signature: Uint8Array }> {
    const r = (
      await this.execute(
        {
          name: "Quote",
          handles: [akHandle],
          sessions: [passwordSession],
          params: (w) => {
            w.tpm2b(qualifyingData).u16(TPM_ALG.NULL);
            marshalPcrSelection(w, [selection]);
          },
        },
        options,
      )
    ).params;
    const attest = r.tpm2b();
    const signature = r.rest();
    readSignature(new TpmReader(signature, "TPMT_SIGNATURE"));
    return { attest, signature };
  }

  /**
   * TPM2_Sign (Part 3, 20.2) of a digest computed outside the TPM, with an unrestricted signing key:
   * inScheme TPM_ALG_NULL (the key's own scheme) and a NULL hashcheck ticket
   * (TPMT_TK_HASHCHECK { TPM_ST_HASHCHECK, TPM_RH_NULL, empty digest }), which the TPM accepts only for
   * unrestricted keys. Returns the TPMT_SIGNATURE and, for ECDSA, r and s (as the TPM returns them).
   */
  async sign(keyHandle: number, digest: Uint8Array, auth: AuthSession = passwordSession, options?: CallOptions): Promise<{ signature: Uint8Array; sigAlg: number; hashAlg: number; ecdsa?: { r: Uint8Array; s: Uint8Array } }> {
    if (digest.length === 0 || digest.length > 64) throw new RangeError(`digest of ${digest.length} bytes`);
    const r = (
      await this.execute(
        {
          name: "Sign",
          handles: [keyHandle],
          sessions: [auth],
          params: (w) => {
            w.tpm2b(digest);
            w.u16(TPM_ALG.NULL); // inScheme: the key's scheme
            w.u16(TPM_ST.HASHCHECK).u32(TPM_RH.NULL).tpm2b(empty); // validation: NULL ticket
          },
        },
        options,
      )
    ).params;
    const signature = r.rest();
    const { sigAlg, hashAlg } = readSignature(new TpmReader(signature, "TPMT_SIGNATURE"));
    if (sigAlg !== TPM_ALG.ECDSA) return { signature, sigAlg, hashAlg };
    const sr = new TpmReader(signature, "TPMT_SIGNATURE");
    sr.u16();
    sr.u16();
    return { signature, sigAlg, hashAlg, ecdsa: { r: sr.tpm2b(), s: sr.tpm2b() } };
  }

  /**
   * TPM2_ActivateCredential: the AK (activateHandle, ADMIN role, password) and the EK (keyHandle,
   * USER role, satisfied by PolicySecret(endorsement)). Returns the secret the verifier sealed.
   */
  async activateCredential(akHandle: number, ekHandle: number, idObject: Uint8Array, encryptedSecret: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
    return this.withEndorsementPolicy(async (ekSession) => {
      const r = (
        await this.execute(
          {
            name: "ActivateCredential",
            handles: [akHandle, ekHandle],
            sessions: [passwordSession, ekSession],
            params: (w) => w.tpm2b(idObject).tpm2b(encryptedSecret),
          },
          options,
        )
      ).params;
      const certInfo = r.tpm2b();
      r.end();
      return certInfo;
    }, options);
  }
}

function writeCreateParams(w: TpmWriter, template: Uint8Array, data: Uint8Array = empty): void {
  w.u16(4 + data.byteLength).u16(0).tpm2b(data); // TPM2B_SENSITIVE_CREATE { userAuth: empty, data }
  w.tpm2b(template);
  w.tpm2b(empty); // outsideInfo
  w.u32(0); // creationPCR: empty TPML_PCR_SELECTION
}

function skipCreationOutputs(r: TpmReader): void {
  r.tpm2b(); // creationData
  r.tpm2b(); // creationHash
  r.u16(); // creationTicket.tag
  r.u32(); // creationTicket.hierarchy
  r.tpm2b(); // creationTicket.digest
}

/** Validate a TPMT_SIGNATURE layout (RSASSA/RSAPSS or ECDSA) and consume it entirely. */
export function readSignature(r: TpmReader): { sigAlg: number; hashAlg: number } {
  const sigAlg = r.u16();
  const hashAlg = r.u16();
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) r.tpm2b();
  else if (sigAlg === TPM_ALG.ECDSA) {
    r.tpm2b();
    r.tpm2b();
  } else throw new TpmError("malformed-response", `unsupported signature algorithm 0x${sigAlg.toString(16)}`);
  r.end();
  return { sigAlg, hashAlg };
}

/** Parse the response envelope: header, response code, handles, parameter area, session area. */
export function parseResponse(raw: Uint8Array, spec: Pick<CommandSpec, "name" | "responseHandles">, sessionCount: number): Response {
  const command = spec.name;
  try {
    const r = new TpmReader(raw, `TPM2_${command} response`);
    const tag = r.u16();
    const size = r.u32();
    const rc = r.u32();
    if (size !== raw.length) throw new TpmError("malformed-response", `header size ${size} but ${raw.length} bytes received`);
    if (rc !== 0) throw new TpmError("response-code", "TPM returned an error", { rc, command });
    const expectedTag = sessionCount ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
    if (tag !== expectedTag) throw new TpmError("malformed-response", `tag 0x${tag.toString(16)}, expected 0x${expectedTag.toString(16)}`);
    const handles = Array.from({ length: spec.responseHandles ?? 0 }, () => r.u32());
    if (!sessionCount) return { handles, params: r.sub(r.remaining, `TPM2_${command} parameters`) };
    const params = r.sub(r.u32(), `TPM2_${command} parameters`);
    for (let i = 0; i < sessionCount; i++) {
      r.tpm2b(); // nonceTPM
      r.u8(); // sessionAttributes
      r.tpm2b(); // hmac (empty for password and unbound policy sessions)
    }
    r.end();
    return { handles, params };
  } catch (err) {
    if (err instanceof TpmError && err.command === undefined) {
      throw new TpmError(err.kind, err.message, { command, cause: err });
    }
    throw err;
  }
}
