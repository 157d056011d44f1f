// Bundles the browser code into the platform's static files (scripts/build-js runs it
// at install time): the deposit page, its sealing worker and the worker hashing what
// it seals, and the page opening a test deposit, each one ES module.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: { deposit: join(here, "deposit.js"), "seal-worker": join(here, "seal-worker.js"),
    "hash-worker": join(here, "hash-worker.js"), "open-test-page": join(here, "open-test-page.js") },
  outdir: join(here, "..", "static", "web", "build"),
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: "linked",
  target: ["chrome111", "firefox119", "safari16.4"],
  legalComments: "linked",
  logLevel: "warning",
});
