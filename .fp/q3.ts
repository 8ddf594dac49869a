import { seg } from "./lib2.ts";
seg("start");
(globalThis as any)["zod"] = await import("zod"); seg("zod");
(globalThis as any)["@libp2p/crypto"] = await import("@libp2p/crypto"); seg("@libp2p/crypto");
(globalThis as any)["@chainsafe/as-sha256"] = await import("@chainsafe/as-sha256"); seg("@chainsafe/as-sha256");
