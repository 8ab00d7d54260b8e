// Runs one call on a hostile file for tests/hostile_files_test.ts and
// tests/hostile_segments_test.ts, in its own process, so that a call that blocks its thread (the
// open of a FIFO) is killed by the test's timer instead of hanging the test run. Prints one JSON
// line: what the call returned or threw, and how long it took.
//   deno run -A tests/_hostile_child.ts open|recover|lock <walDir>
//   deno run -A tests/_hostile_child.ts reader|unstarted|header|empty <segment path>
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { lockWalDirectory, unlockWalDirectory } from "../src/lock.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { PerCoreWalReader } from "../src/reader.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { hasSegmentHeader, isEmptyFile, isUnstartedSegment } from "../src/segment_files.ts";

const [action, path] = Deno.args;
const started = performance.now();
let out: Record<string, unknown>;
try {
  if (action === "open") {
    await using _m = await PerCoreWalManager.open(
      new PerCoreWalConfig(path, 1, { segmentSizeBytes: 256 * 1024 }),
    );
    out = { ok: true };
  } else if (action === "recover") {
    using r = await recoverPerCore(path, { readOnly: true });
    out = {
      ok: true,
      checkpoint: r.checkpoint?.id ?? null,
      keys: r.state.size,
      report: r.checkpointReport,
    };
  } else if (action === "lock") {
    unlockWalDirectory(lockWalDirectory(path));
    out = { ok: true };
  } else if (action === "reader") {
    await using r = await PerCoreWalReader.open(path);
    out = { ok: true, result: (await r.readNext()).kind };
  } else if (action === "unstarted") {
    out = { ok: true, result: isUnstartedSegment(path) };
  } else if (action === "header") {
    out = { ok: true, result: hasSegmentHeader(path) };
  } else if (action === "empty") {
    out = { ok: true, result: isEmptyFile(path) };
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
