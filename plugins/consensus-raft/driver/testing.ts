/** Helpers for tests and benches: in-process groups of drivers over a MemoryNetwork. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../sdk/plugin.ts";
import type { NodeId } from "../core/index.ts";
import { RaftDriver, type RaftDriverInit } from "./driver.ts";
import { KvStateMachine } from "./kv-state-machine.ts";
import { MemoryNetwork } from "./memory-transport.ts";

const noop = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export interface TestMember {
  id: NodeId;
  driver: RaftDriver;
  sm: KvStateMachine;
}

export class TestGroup {
  readonly net = new MemoryNetwork();
  readonly dir: string;
  readonly members = new Map<NodeId, TestMember>();

  constructor(readonly ids: NodeId[], readonly opts: Partial<RaftDriverInit> = {}, dir?: string) {
    this.dir = dir ?? mkdtempSync(join(tmpdir(), "grey-raft-"));
  }

  async start(): Promise<this> {
    for (const id of this.ids) await this.startMember(id, this.ids);
    return this;
  }

  async startMember(id: NodeId, founders?: NodeId[]): Promise<TestMember> {
    const sm = new KvStateMachine(join(this.dir, `sm-${id}.db`), this.opts.durable ?? true);
    const driver = new RaftDriver(
      { id, storagePath: join(this.dir, `raft-${id}.db`), tickMs: 10, seed: id, ...(founders ? { founders } : {}), ...this.opts },
      { logger: silentLogger, clock: { now: Date.now }, stateMachine: sm, transport: this.net.transport(id) },
    );
    await driver.start();
    const m = { id, driver, sm };
    this.members.set(id, m);
    return m;
  }

  async stopMember(id: NodeId): Promise<void> {
    const m = this.members.get(id);
    if (!m) return;
    this.members.delete(id);
    await m.driver.stop();
    m.sm.close();
  }

  /** Waits until every running member agrees on one leader; returns it. */
  async leader(timeoutMs = 5000): Promise<TestMember> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leaders = [...this.members.values()].filter((m) => m.driver.leader()?.self);
      const l = leaders[0];
      if (leaders.length === 1 && l && [...this.members.values()].every((m) => m.driver.leader()?.id === l.id)) return l;
      await Bun.sleep(5);
    }
    throw new Error("no stable leader");
  }

  async until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Bun.sleep(5);
    }
  }

  async stop(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stopMember(id);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
