/** Defaults for the libp2p mesh. */
export const listenDefault = "/ip4/0.0.0.0/tcp/0";
/** Namespace prefix hashed with the CA fingerprint to form the federation's DHT provider key. */
export const hubNamespacePrefix = "grey-federation/hubs/";
/** Connections kept open at most (libp2p connection manager). Beyond: oldest idle pruned. */
export const maxConnections = 512;
/** Re-provide the hub record this often (ms). */
export const reprovideIntervalMs = 60_000;
