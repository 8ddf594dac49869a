export { createApiApp, HEALTH_PATH } from "./app.ts";
export { startApiServer, type ApiServer, type ApiServerOptions } from "./server.ts";
export { clusterView, type ClusterView } from "./routes/clusters.ts";
export type { ApiDeps, ApiRegistry, Env, PeerAuth } from "./types.ts";
