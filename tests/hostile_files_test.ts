// Hostile files in and around a WAL (issue 18, items 4, 7, 8, 9): what the module did not make
// is never deleted, a FIFO is refused instead of opened, and a manifest with a valid checksum
// but bad contents is skipped as an invalid checkpoint, never followed.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { CheckpointCoordinator } from "../src/checkpoint.ts";
import type { CheckpointMetadata } from "../src/checkpoint_store.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { ignoreWithoutUring, smallConfig, tempDir } from "./_helpers.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: ignoreWithoutUring, fn });

/** A 1-core WAL with a few records and `checkpoints` checkpoints; returns its paths. */
async function walWithCheckpoints(
  root: string,
  checkpoints: number,
  before?: (checkpointDir: string) => void,
): Promise<{ wal: string; ckpt: string; metas: CheckpointMetadata[] }> {
  const config = smallConfig(root);
  await using m = await PerCoreWalManager.open(config);
  const coordinator = new CheckpointCoordinator(m, { retain: 10 });
  Deno.mkdirSync(coordinator.checkpointDir, { recursive: true });
  before?.(coordinator.checkpointDir);
  const metas: CheckpointMetadata[] = [];
  for (let i = 0; i < checkpoints; i++) {
    const w = m.writer(0);
    for (let k = 0; k < 20; k++) w.appendPut(`k${i}-${k}`, `v${i}-${k}`);
    await w.sync();
    metas.push(await coordinator.checkpoint({ state: new TextEncoder().encode(`app ${i}`) }));
  }
  return { wal: config.baseDir, ckpt: coordinator.checkpointDir, metas };
}

// Item 4 ------------------------------------------------------------------------------------

test("a checkpoint deletes only its own leftovers (ckpt-NNNNNNNNNN.tmp), never the application's *.tmp", async () => {
  await using dir = await tempDir();
  const outside = `${dir.path}/outside`;
  Deno.mkdirSync(outside);
  Deno.writeTextFileSync(`${outside}/precious`, "keep me");
  const { ckpt } = await walWithCheckpoints(dir.path, 1, (ckpt) => {
    Deno.mkdirSync(`${ckpt}/build.tmp/obj`, { recursive: true });
    Deno.writeTextFileSync(`${ckpt}/build.tmp/obj/a.o`, "object");
    Deno.writeTextFileSync(`${ckpt}/cache.tmp`, "cache");
    Deno.mkdirSync(`${ckpt}/ckpt-7.tmp`); // not a name the module writes (no padding)
    Deno.mkdirSync(`${ckpt}/ckpt-0000000003.tmp.tmp`);
    // Named like a leftover, but a symbolic link: never followed, what it names is untouched.
    Deno.symlinkSync(outside, `${ckpt}/ckpt-0000000009.tmp`);
    // A real leftover of an interrupted checkpoint: removed.
    Deno.mkdirSync(`${ckpt}/ckpt-0000000005.tmp`);
    Deno.writeTextFileSync(`${ckpt}/ckpt-0000000005.tmp/state.kv`, "partial");
  });
  assertEquals(Deno.readTextFileSync(`${ckpt}/build.tmp/obj/a.o`), "object");
  assertEquals(Deno.readTextFileSync(`${ckpt}/cache.tmp`), "cache");
  assert(Deno.statSync(`${ckpt}/ckpt-7.tmp`).isDirectory);
  assert(Deno.statSync(`${ckpt}/ckpt-0000000003.tmp.tmp`).isDirectory);
  assertEquals(Deno.readTextFileSync(`${outside}/precious`), "keep me");
  assert(Deno.lstatSync(`${ckpt}/ckpt-0000000009.tmp`).isSymlink);
  assertThrows(() => Deno.lstatSync(`${ckpt}/ckpt-0000000005.tmp`), Deno.errors.NotFound);
});

test("cleanupOldCheckpoints removes only the module's leftovers and old checkpoints", async () => {
  await using dir = await tempDir();
  const config = smallConfig(dir.path);
  await using m = await PerCoreWalManager.open(config);
  const coordinator = new CheckpointCoordinator(m);
  await coordinator.checkpoint();
  const ckpt = coordinator.checkpointDir;
  Deno.mkdirSync(`${ckpt}/build.tmp`);
  Deno.writeTextFileSync(`${ckpt}/cache.tmp`, "cache");
  Deno.mkdirSync(`${ckpt}/ckpt-0000000005.tmp`);
  assertEquals(await coordinator.cleanupOldCheckpoints(1), 1);
  assert(Deno.statSync(`${ckpt}/build.tmp`).isDirectory);
  assertEquals(Deno.readTextFileSync(`${ckpt}/cache.tmp`), "cache");
});
