/** Where the federation's keys and certificates live inside a hub data dir. */
import { join } from "node:path";

export function caPaths(dir: string) {
  return {
    caDir: join(dir, "ca"),
    caKey: join(dir, "ca", "ca.key"),
    caCert: join(dir, "ca", "ca.pem"),
    tlsDir: join(dir, "tls"),
    hubKey: join(dir, "tls", "hub.key"),
    hubCert: join(dir, "tls", "hub.pem"),
    adminDir: join(dir, "admin"),
    adminCa: join(dir, "admin", "ca.pem"),
    adminCert: join(dir, "admin", "cert.pem"),
    adminKey: join(dir, "admin", "key.pem"),
  };
}
