/** Lifecycle of the services a binary runs (hub or agent): ordered start, reverse stop. */

/** Start services in order; on failure stop the ones already started and rethrow. */
export async function startServices<C>(services: { name: string; start(ctx: C): Promise<void>; stop(): Promise<void> }[], ctx: C): Promise<() => Promise<void>> {
  const started: typeof services = [];
  try {
    for (const s of services) {
      await s.start(ctx);
      started.push(s);
    }
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => {});
    throw err;
  }
  return async () => {
    for (const s of started.reverse()) await s.stop().catch(() => {});
  };
}
