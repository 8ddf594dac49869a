/**
 * Build matrix for the two shipped executables.
 *
 *   bun build/compile.ts              build every target
 *   bun build/compile.ts --if-needed  build only when dist/ is missing or older than the sources
 *   bun build/compile.ts --target linux-x64   one arch only
 *
 * Cross-compiling needs the target's Bun runtime. We never download it from
 * Bun's CDN (a fresh machine may only reach the npm registry): the runtime of
 * the pinned Bun version comes from the npm package @oven/bun-linux-<arch>,
 * fetched with `npm pack` into .cache/.
 */
import { $ } from "bun";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const dist = join(root, "dist");
const cache = join(root, ".cache");

type Arch = "x64" | "arm64";
interface Program { name: "grey-agent" | "grey-hub"; entry: string; extra: string[] }

const programs: Program[] = [
  { name: "grey-agent", entry: "agent/main.ts", extra: [] },
  { name: "grey-hub", entry: "hub/main.ts", extra: [] },
];
/**
 * Footprint flags (measured with bench/footprint.ts):
 *  - --splitting: every `import()` of a static specifier becomes a chunk of its own inside the
 *    executable, loaded only when that import runs. Without it a lazy import still costs at start
 *    (the whole bundle is one module: every function of every module is instantiated up front).
 *    The CLIs import each command's modules inside the command, so `--version` idles like bare Bun.
 *  - JIT tier-up thresholds x10: code that runs a few times (start-up, module init, one join) stays
 *    in the interpreter instead of filling the JIT's memory; hot paths still tier up, later.
 *    About -6 MB idle RSS for the agent, -4.5 MB for the hub.
 */
const jitPolicy = 10;
const archs: Arch[] = ["x64", "arm64"];
const ociArch: Record<Arch, string> = { x64: "x64", arm64: "aarch64" };

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
const bunVersion = pkg.devDependencies["bun"];
if (!bunVersion) throw new Error("package.json must pin bun as a devDependency");

async function gitCommit(): Promise<string> {
  const r = await $`git -C ${root} rev-parse --short=12 HEAD`.quiet().nothrow();
  if (r.exitCode !== 0) return "unknown";
  const dirty = await $`git -C ${root} status --porcelain --untracked-files=no`.quiet().nothrow();
  return r.stdout.toString().trim() + (dirty.stdout.toString().trim() ? "-dirty" : "");
}

/** Path to a Bun runtime for `arch`, from the npm registry (never Bun's CDN). */
async function runtimeFor(arch: Arch): Promise<string> {
  if (arch === "x64" && process.arch === "x64") return process.execPath;
  if (arch === "arm64" && process.arch === "arm64") return process.execPath;
  const pkgName = `@oven/bun-linux-${ociArch[arch]}`;
  const dir = join(cache, `bun-linux-${ociArch[arch]}-${bunVersion}`);
  const bin = join(dir, "package", "bin", "bun");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const packed = await $`npm pack --silent ${pkgName}@${bunVersion} --pack-destination ${dir}`.cwd(dir).quiet();
  const tgz = join(dir, packed.stdout.toString().trim().split("\n").pop()!);
  await $`tar -xzf ${tgz} -C ${dir}`.quiet();
  if (!existsSync(bin)) throw new Error(`${pkgName}@${bunVersion} has no bin/bun`);
  return bin;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function upToDate(targets: Arch[]): boolean {
  const outs = programs.flatMap((p) => targets.map((a) => join(dist, `${p.name}-linux-${a}`)));
  if (!outs.every(existsSync)) return false;
  const oldest = Math.min(...outs.map((o) => statSync(o).mtimeMs));
  const sources = Math.max(...["agent", "hub", "plugins", "attest"].filter((d) => existsSync(join(root, d))).map((d) => newestMtime(join(root, d))));
  return sources < oldest;
}

async function compile(p: Program, arch: Arch, version: string, commit: string): Promise<string> {
  const out = join(dist, `${p.name}-linux-${arch}`);
  const runtime = await runtimeFor(arch);
  const bunBin = process.execPath;
  const args = [
    "build", "--compile", "--splitting", "--minify", "--bytecode", "--format=esm",
    `--compile-jit-policy=${jitPolicy}`,
    `--target=bun-linux-${arch}`,
    `--compile-executable-path=${runtime}`,
    "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    `--define`, `GREY_VERSION=${JSON.stringify(version)}`,
    `--define`, `GREY_COMMIT=${JSON.stringify(commit)}`,
    `--outfile=${out}`,
    join(root, p.entry), ...p.extra.map((e) => join(root, e)),
  ];
  const proc = Bun.spawnSync([bunBin, ...args], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) {
    throw new Error(`compile ${p.name} ${arch} failed:\n${proc.stdout.toString()}\n${proc.stderr.toString()}`);
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ifNeeded = argv.includes("--if-needed");
  const ti = argv.indexOf("--target");
  const targets: Arch[] = ti >= 0 ? [argv[ti + 1]!.replace("linux-", "") as Arch] : archs;
  for (const t of targets) if (!archs.includes(t)) throw new Error(`unknown target ${t}; expected linux-x64 or linux-arm64`);
  if (ifNeeded && upToDate(targets)) {
    console.log("dist/ is up to date");
    return;
  }
  mkdirSync(dist, { recursive: true });
  const commit = await gitCommit();
  const started = performance.now();
  for (const arch of targets) {
    for (const p of programs) {
      const out = await compile(p, arch, pkg.version, commit);
      console.log(`built ${out.slice(root.length + 1)} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
    }
  }
  const sums = readdirSync(dist)
    .filter((f) => /^grey-(agent|hub)-linux-(x64|arm64)$/.test(f))
    .sort()
    .map((f) => `${createHash("sha256").update(readFileSync(join(dist, f))).digest("hex")}  ${f}`);
  writeFileSync(join(dist, "SHA256SUMS"), sums.join("\n") + "\n");
  console.log(`version ${pkg.version} commit ${commit}; ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
