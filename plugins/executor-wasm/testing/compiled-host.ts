/**
 * Entry of the compiled test binary (spawn.test.ts): shaped like the agent's
 * main, with the runner check first and the application loaded after it.
 */
import { maybeRunWasmChild } from "../child.ts";

if (!(await maybeRunWasmChild(process.argv))) await import("./compiled-host-app.ts");
