// Atomic batches (issue 16, item 5): one record of type `atomicBatch` (format v3) that takes
// one sequence per operation; readers expand it into consecutive entries.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { CoreLog } from "../src/core_log.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import type { CommitOperation } from "../src/types.ts";
import { asPut, ignoreWithoutUring, readCore, smallConfig, str, tempDir } from "./_helpers.ts";

Deno.test({
  name: "CoreLog.appendBatch: one record, consecutive sequences, read back as entries",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const config = smallConfig(dir.path);
    {
      await using log = await CoreLog.open(config, 0);
      assertEquals(log.appendPut("a", "1"), 1n);
      const last = log.appendBatch([
        { type: "put", key: "b", value: "2" },
        { type: "delete", key: "a" },
        { type: "commit", offsets: { src: 7n }, watermark: 3n },
      ]);
      assertEquals(last, 4);
      assertEquals(log.appendPut("c", "3"), 5n);
      await log.sync();
    }
    const entries = await readCore(config);
    assertEquals(entries.map((e) => e.sequence), [1n, 2n, 3n, 4n, 5n]);
    assertEquals(entries.map((e) => e.operation.type), ["put", "put", "delete", "commit", "put"]);
    assertEquals(str(asPut(entries[1].operation).value), "2");
    assertEquals(entries[2].timestampNs, entries[3].timestampNs);
    assertEquals(entries[3].operation.type, "commit");
    const commit = entries[3].operation as CommitOperation;
    assertEquals(commit.offsets.get("src"), 7n);
    assertEquals(commit.watermark, 3n);
  },
});
