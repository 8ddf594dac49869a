import { describe } from "bun:test";
import { kmsCompliance } from "../sdk/compliance/kms.ts";
import { softhsmAvailable, softhsmToken } from "../connector-onprem/testing.ts";
import { hsmKms } from "./index.ts";

const components = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() }, fetch };

describe("kms-hsm on SoftHSM", () => {
  // CI installs softhsm2 (.ci/run): a missing HSM is a failure, never a skip.
  if (!softhsmAvailable()) throw new Error("softhsm2 is required (apt-get install softhsm2)");
  kmsCompliance("kms-hsm", async () => ({
    kms: hsmKms({ pkcs11: softhsmToken(), label: `grey-kek-${crypto.randomUUID().slice(0, 8)}` })(components),
    unreachable: hsmKms({ pkcs11: { ...softhsmToken(), module: "/nonexistent/libpkcs11.so" }, label: "x" })(components),
    stop: () => {},
  }));
});
