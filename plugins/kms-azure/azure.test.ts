import { closedPort } from "../sdk/compliance/connector.ts";
import { kmsCompliance } from "../sdk/compliance/kms.ts";
import { azureKms } from "./index.ts";
import { keyVaultMock } from "./testing.ts";

const components = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() }, fetch };

kmsCompliance("kms-azure", async () => {
  const m = keyVaultMock({ keyName: "grey-kek" });
  const down = `http://127.0.0.1:${closedPort()}`;
  return {
    kms: azureKms({ vaultUrl: m.url, keyName: "grey-kek", imdsEndpoint: m.url })(components),
    unreachable: azureKms({ vaultUrl: down, keyName: "grey-kek", imdsEndpoint: down })(components),
    stop: () => m.stop(),
  };
});
