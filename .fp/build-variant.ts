const [out, ...flags] = process.argv.slice(2);
const nowasm = flags.includes("nowasm");
const r = await Bun.build({
  entrypoints: [process.env.ENTRY ?? "/work/main/agent/main.ts"], target: "bun", format: "esm", minify: true, splitting: true,
  bytecode: !flags.includes("nobytecode"),
  compile: { outfile: out!, ...(process.env.ORDER ? { bytecodeOrder: process.env.ORDER.split(",") } : {}), autoloadDotenv: false, autoloadBunfig: false, ...(flags.find((f) => f.startsWith("jit=")) ? { jitPolicy: Number(flags.find((f) => f.startsWith("jit="))!.slice(4)) } : {}) },
  plugins: nowasm ? [{ name: "nowasm", setup(b) {
    b.onResolve({ filter: /crypto\/index\.js$|^@chainsafe\/libp2p-noise\/crypto$/ }, (a) => (a.importer.includes("@chainsafe/libp2p-noise") || a.path.startsWith("@chainsafe")) ? { path: "/work/main/.fp/nowasm-crypto.ts" } : undefined);
  } }] : [],
});
if (!r.success) { console.error(r.logs); process.exit(1); }
console.log("built", out);
