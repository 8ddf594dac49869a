import { closedPort } from "../sdk/compliance/connector.ts";
import { kmsCompliance } from "../sdk/compliance/kms.ts";
import { startSwtpm, type Swtpm } from "../attestor-tpm/testing/swtpm.ts";
import { tpmKms } from "./index.ts";

const components = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() }, fetch };

kmsCompliance("kms-tpm (swtpm)", async () => {
  const sw: Swtpm = await startSwtpm();
  return {
    kms: tpmKms({ tpm: `swtpm:127.0.0.1:${sw.port}` })(components),
    unreachable: tpmKms({ tpm: `swtpm:127.0.0.1:${closedPort()}` })(components),
    stop: () => sw.stop(),
  };
});
