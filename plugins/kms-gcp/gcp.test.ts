import { closedPort } from "../sdk/compliance/connector.ts";
import { kmsCompliance } from "../sdk/compliance/kms.ts";
import { gcpKms } from "./index.ts";
import { cloudKmsMock } from "./testing.ts";

const components = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() }, fetch };
const keyName = "projects/grey-lab/locations/europe-west1/keyRings/grey/cryptoKeys/federation";

kmsCompliance("kms-gcp", async () => {
  const m = cloudKmsMock({ keyName });
  const down = `http://127.0.0.1:${closedPort()}`;
  return {
    kms: gcpKms({ keyName, endpoint: m.url, metadataEndpoint: m.url })(components),
    unreachable: gcpKms({ keyName, endpoint: down, metadataEndpoint: down })(components),
    stop: () => m.stop(),
  };
});
