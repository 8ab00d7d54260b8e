/**
 * What writer handles cost in memory: the growth of this process's resident memory (RSS) after
 * creating handles with the default options (each reserves its whole shared buffer).
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-ffi --allow-env bench/handle_memory.ts [handles]
 * ```
 *
 * @module
 */

import { PerCoreWalManager } from "../mod.ts";

const MIB = 2 ** 20;

const handles = Number(Deno.args[0] ?? 8);
const dir = await Deno.makeTempDir();
try {
  await using wal = await PerCoreWalManager.open(dir, { cores: 1 }); // default buffer sizes
  const before = Deno.memoryUsage().rss;
  const kept = Array.from({ length: handles }, () => wal.writerHandle(0));
  const reserved = kept.reduce((n, h) => n + h.ring.byteLength, 0);
  const created = Deno.memoryUsage().rss;
  console.log(
    `${handles} handles, ${(reserved / MIB).toFixed(0)} MiB reserved: ` +
      `resident +${((created - before) / MIB).toFixed(1)} MiB`,
  );
} finally {
  Deno.removeSync(dir, { recursive: true });
}
