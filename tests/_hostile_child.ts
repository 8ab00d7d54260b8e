// Runs one call on a hostile directory for tests/hostile_files_test.ts, in its own process, so
// that a call that blocks its thread (the open of a FIFO) is killed by the test's timer instead
// of hanging the test run. Prints one JSON line: what the call returned or threw, and how long.
//   deno run -A tests/_hostile_child.ts open|recover <walDir>
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";

const [action, dir] = Deno.args;
const started = performance.now();
let out: Record<string, unknown>;
try {
  if (action === "open") {
    await using _m = await PerCoreWalManager.open(
      new PerCoreWalConfig(dir, 1, { segmentSizeBytes: 256 * 1024 }),
    );
    out = { ok: true };
  } else if (action === "recover") {
    using r = await recoverPerCore(dir, { readOnly: true });
    out = {
      ok: true,
      checkpoint: r.checkpoint?.id ?? null,
      keys: r.state.size,
      report: r.checkpointReport,
    };
  } else {
    throw new Error(`unknown action ${action}`);
  }
} catch (e) {
  out = {
    ok: false,
    walError: e instanceof PerCoreWalError,
    code: (e as { code?: string }).code,
    message: String((e as Error).message ?? e),
  };
}
out.elapsedMs = performance.now() - started;
console.log(JSON.stringify(out));
