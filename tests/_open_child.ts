// Opens a WAL in a child process with the permissions the test gives it, and prints what
// happened as one JSON line: whether the open succeeded, its error, and every event reported.
// Usage: _open_child.ts <dir> <backend>
import { type BackendChoice, PerCoreWalManager, type WalEvent } from "../mod.ts";

const [dir, backend] = Deno.args;
const events: WalEvent[] = [];
let error: string | undefined;
try {
  const m = await PerCoreWalManager.open(dir, {
    cores: 1,
    backend: backend as BackendChoice,
    segmentSizeBytes: 256 * 1024,
    onEvent: (e) => events.push(e),
  });
  m.writer(0).appendPut("k", "v");
  await m.syncAll();
  await m.close();
} catch (e) {
  error = `${(e as Error).name}: ${(e as Error).message}`;
}
console.log(JSON.stringify({ error, events }));
