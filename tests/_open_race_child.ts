// Opens a file for reading the way the module does, with the test hook of `src/fs.ts` swapping a
// FIFO in between the type check and the open, for tests/open_race_test.ts. Runs in its own
// process: an open that blocks on the FIFO is killed by the test's timer. Prints one JSON line:
// what the call returned or threw.
//   deno run -A tests/_open_race_child.ts sync|async fifo|symlink <dir>
import { PerCoreWalError } from "../src/errors.ts";
import { openRegularFile, openRegularFileAsync, replaceDurabilityOps } from "../src/fs.ts";

const [action, kind, dir] = Deno.args;
const path = `${dir}/wal.json`;
Deno.writeTextFileSync(path, "{}\n");
const real = replaceDurabilityOps(undefined);
let swapped = 0;
replaceDurabilityOps({
  ...real,
  beforeOpenForRead(p) {
    if (p !== path) return;
    Deno.removeSync(p);
    if (kind === "symlink") {
      Deno.writeTextFileSync(`${dir}/elsewhere`, "{}\n");
      Deno.symlinkSync(`${dir}/elsewhere`, p);
    } else {
      const out = new Deno.Command("mkfifo", { args: [p] }).outputSync();
      if (!out.success) throw new Error("mkfifo failed");
    }
    swapped++;
  },
});
let out: Record<string, unknown>;
try {
  if (action === "sync") openRegularFile(path, "WAL metadata file").close();
  else if (action === "async") (await openRegularFileAsync(path, "Segment")).close();
  else throw new Error(`unknown action ${action}`);
  out = { ok: true };
} catch (e) {
  out = {
    ok: false,
    walError: e instanceof PerCoreWalError,
    code: (e as { code?: string }).code,
    message: String((e as Error).message ?? e),
  };
}
out.swapped = swapped;
console.log(JSON.stringify(out));
