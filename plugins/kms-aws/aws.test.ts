import { closedPort } from "../sdk/compliance/connector.ts";
import { kmsCompliance } from "../sdk/compliance/kms.ts";
import { awsKms } from "./index.ts";
import { kmsMock } from "./testing.ts";

const components = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() }, fetch };
const creds = { accessKeyId: "AKIAKMSEXAMPLE000001", secretAccessKey: "kms/secret/example" };

kmsCompliance("kms-aws", async () => {
  const m = kmsMock({ region: "eu-west-1", account: "189292791360", ...creds, alias: "alias/grey-ca" });
  return {
    kms: awsKms({ region: "eu-west-1", keyId: "alias/grey-ca", credentials: creds, endpoint: m.url })(components),
    unreachable: awsKms({ region: "eu-west-1", keyId: "alias/grey-ca", credentials: creds, endpoint: `http://127.0.0.1:${closedPort()}` })(components),
    stop: () => m.stop(),
  };
});
