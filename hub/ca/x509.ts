/** @peculiar/x509, loaded after the Reflect metadata shim it needs. Import x509 from here only. */
import "./reflect-shim.ts";
const x509: typeof import("@peculiar/x509") = await import("@peculiar/x509");
export { x509 };
