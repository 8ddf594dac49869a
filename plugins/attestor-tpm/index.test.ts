import { afterAll, beforeAll, expect, test } from "bun:test";
import { ConfigError } from "../sdk/errors.ts";
import { fromTpm2bPublic, makeCredential, objectName, tpmAttestor, resolveTpmAttestorConfig, type TpmAttestor } from "./index.ts";
import { toHex } from "./marshal.ts";
import { checkquote } from "./testing/checkquote.ts";
import { requireTools, startSwtpm, type Swtpm } from "./testing/swtpm.ts";

let swtpm: Swtpm;
let attestor: TpmAttestor;

beforeAll(async () => {
  requireTools();
  swtpm = await startSwtpm();
  attestor = tpmAttestor({ tcp: { host: swtpm.host, port: swtpm.port }, ekAlg: "rsa", akAlg: "ecc", readTimeoutMs: 10_000 })();
  await attestor.start();
});

afterAll(async () => {
  await attestor?.stop();
  await swtpm?.stop();
});

test("join flow: hub challenges the EK, agent activates, then quotes the hub's nonce", async () => {
  // hub side: seal a secret to the EK for the AK's name (computed from the AK public area)
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const challenge = makeCredential(fromTpm2bPublic(attestor.ekPublic()), objectName(fromTpm2bPublic(attestor.akPublic())), secret);
  // agent side
  expect(toHex(await attestor.activateCredential(challenge.idObject, challenge.encryptedSecret))).toBe(toHex(secret));

  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const evidence = await attestor.collect(nonce);
  expect(evidence.pcrSelection.pcrs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 10, 16, 23]);
  expect(toHex(evidence.akPublic)).toBe(toHex(attestor.akPublic()));
  expect((await checkquote({ evidence, nonce })).ok).toBe(true);
});

test("config problems are all reported at once, with their paths", () => {
  let err: unknown;
  try {
    resolveTpmAttestorConfig({ device: "/dev/tpmrm0", tcp: { host: "x", port: 0 }, pcrs: [3, 24], akAlg: "dsa" as never });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).problems).toEqual([
    "device, tcp: give one, not both",
    "tcp.port: must be 1..65535",
    "pcrs[1]: must be 0..23",
    'akAlg: must be "ecc" or "rsa"',
  ]);
});
