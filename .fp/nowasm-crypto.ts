import { pureJsCrypto } from "../node_modules/@chainsafe/libp2p-noise/dist/src/crypto/js.js";
export { pureJsCrypto };
export const defaultCrypto = pureJsCrypto;
export const nodeCrypto = pureJsCrypto;
export const asCrypto = pureJsCrypto;
