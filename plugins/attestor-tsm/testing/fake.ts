/**
 * Test fake of configfs-tsm on a real directory: the agent's code does its ordinary file I/O there,
 * and this TsmFs plays the kernel's part on each call, as drivers/virt/coco/tsm.c does:
 * - mkdir ROOT/report/NAME creates the object with `provider` and `generation` (0);
 * - writing `inblob` accepts at most 64 bytes (EINVAL otherwise), bumps `generation`, and drops any
 *   previous report;
 * - reading `outblob` without an inblob fails (EINVAL); otherwise it produces the report for the
 *   inblob (from `report`) and, for sev_guest, `auxblob` with it;
 * - rmdir removes the object (configfs attributes are not files, so a plain rmdir works there).
 * `interleave(n)` makes another "writer" bump the generation during the next n reads of outblob.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { TsmFs, TsmProvider } from "../report.ts";

export interface FakeTsm extends TsmFs {
  readonly root: string;
  /** inblobs written, in order. */
  readonly inblobs: Uint8Array[];
  /** Report objects currently present. */
  objects(): number;
  interleave(n: number): void;
}

const errno = (code: string, path: string) => Object.assign(new Error(`${code}: ${path}`), { code });

export function fakeTsm(root: string, provider: TsmProvider, report: (inblob: Uint8Array) => { outblob: Uint8Array; auxblob?: Uint8Array }): FakeTsm {
  const state = new Map<string, { generation: number; inblob?: Uint8Array }>();
  const inblobs: Uint8Array[] = [];
  let interleaving = 0;
  const objectOf = (path: string) => {
    const dir = dirname(path);
    const o = state.get(dir);
    if (!o) throw errno("ENOENT", path);
    return { dir, o, attr: basename(path) };
  };
  const setGeneration = (dir: string, o: { generation: number }) => writeFile(join(dir, "generation"), `${o.generation}\n`);
  return {
    root,
    inblobs,
    objects: () => state.size,
    interleave(n) {
      interleaving = n;
    },
    async mkdir(path) {
      if (dirname(path) !== join(root, "report")) throw errno("EACCES", path);
      await mkdir(path);
      const o = { generation: 0 };
      state.set(path, o);
      await writeFile(join(path, "provider"), `${provider}\n`);
      await setGeneration(path, o);
    },
    async rmdir(path) {
      if (!state.delete(path)) throw errno("ENOENT", path);
      await rm(path, { recursive: true, force: true });
    },
    async writeFile(path, data) {
      const { dir, o, attr } = objectOf(path);
      if (attr !== "inblob") throw errno("EACCES", path);
      if (data.byteLength > 64) throw errno("EINVAL", path);
      o.inblob = new Uint8Array(data);
      inblobs.push(o.inblob);
      o.generation++;
      await writeFile(path, data);
      await rm(join(dir, "outblob"), { force: true });
      await rm(join(dir, "auxblob"), { force: true });
      await setGeneration(dir, o);
    },
    async readFile(path) {
      const { dir, o, attr } = objectOf(path);
      if (attr === "outblob") {
        if (!o.inblob) throw errno("EINVAL", path);
        const r = report(o.inblob);
        await writeFile(path, r.outblob);
        if (provider === "sev_guest") await writeFile(join(dir, "auxblob"), r.auxblob ?? new Uint8Array()); // empty: host gave no certificates
        if (interleaving > 0) {
          interleaving--;
          o.generation++;
          await setGeneration(dir, o);
        }
      }
      if (attr === "auxblob" && provider !== "sev_guest") throw errno("ENOENT", path);
      return new Uint8Array(await readFile(path));
    },
  };
}
