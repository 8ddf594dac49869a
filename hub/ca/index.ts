/** The federation CA: see README.md ("CA layout"). */
export { loadCa, caFromPem, type Ca, type IssuedCert, type MemberCertRequest } from "./ca.ts";
export { createCsr, csrPublicKey, verifyCsr } from "./csr.ts";
export { CaMissingError, FederationExistsError } from "./errors.ts";
export { defaultHubName, initFederation, initFederationFrom, loadHubTls, type InitOptions, type InitFromOptions, type InitResult } from "./init.ts";
export { exportPkcs8Pem, exportSpkiDer, generateKeyPair, importPkcs8Pem } from "./keys.ts";
export { caPaths } from "./layout.ts";
