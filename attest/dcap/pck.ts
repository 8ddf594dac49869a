/** Intel SGX PCK certificate extensions (OID 1.2.840.113741.1.13.1): TCB, PCE-ID, FMSPC. */
import { malformed, toHex } from "../bytes.ts";
import { children, octets, oid, parseDer, seq } from "../der.ts";
import { extension, type Certificate } from "../x509/cert.ts";

const SGX_EXT = "1.2.840.113741.1.13.1";

export type PckExtensions = { fmspc: string; pceId: string; pceSvn: number; cpuSvn: Uint8Array; compSvn: number[] };

export function pckExtensions(cert: Certificate): PckExtensions {
  const e = extension(cert, SGX_EXT);
  if (!e) malformed("PCK certificate: no SGX extension");
  const out: Partial<PckExtensions> = {};
  for (const item of seq(parseDer(e.value, "SGX extension"), "SGX extension")) {
    const [idT, v] = seq(item, "SGX extension item");
    const id = oid(idT, "SGX extension item");
    if (!v) malformed("PCK certificate: SGX extension item without value");
    if (id === `${SGX_EXT}.4`) out.fmspc = toHex(octets(v, "FMSPC"));
    else if (id === `${SGX_EXT}.3`) out.pceId = toHex(octets(v, "PCE-ID"));
    else if (id === `${SGX_EXT}.2`) {
      const comp: number[] = new Array(16).fill(0);
      for (const t of children(v)) {
        const [tid, tv] = seq(t, "TCB item");
        if (!tv) malformed("PCK certificate: TCB item without value");
        const n = Number(oid(tid, "TCB item").split(".").pop());
        if (n >= 1 && n <= 16) comp[n - 1] = tv.body.reduce((a, b) => a * 256 + b, 0);
        else if (n === 17) out.pceSvn = tv.body.reduce((a, b) => a * 256 + b, 0);
        else if (n === 18) out.cpuSvn = octets(tv, "CPUSVN");
      }
      out.compSvn = comp;
    }
  }
  if (out.fmspc === undefined || out.pceId === undefined || out.pceSvn === undefined || !out.compSvn) malformed("PCK certificate: incomplete SGX extension");
  return { fmspc: out.fmspc, pceId: out.pceId, pceSvn: out.pceSvn, cpuSvn: out.cpuSvn ?? new Uint8Array(16), compSvn: out.compSvn };
}
