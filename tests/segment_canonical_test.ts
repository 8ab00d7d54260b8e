/**
 * A file whose name reads as a segment index but is not the name the WAL gives that index
 * (`wal-0-0.log` for segment 0, whose name is `wal-0-000000.log`) is refused as damage, naming the
 * file, by `open()`, recovery in every mode and `wal verify`: it may hold data, so it is neither
 * read as a segment (twice, beside the real one) nor silently skipped.
 */

import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { PerCoreWalError } from "../src/errors.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import type { RecoveryMode } from "../src/recovery_types.ts";
import { ignoreWithoutUring, smallConfig, tempDir, walVerify } from "./_helpers.ts";

const MODES: RecoveryMode[] = ["tolerateTornTail", "strict", "pointInTime", "salvage"];

/** A one-core WAL with 200 records in its first segment. */
async function build(dir: string) {
  const config = smallConfig(dir);
  await using m = await PerCoreWalManager.open(config);
  const w = m.writer(0);
  for (let i = 0; i < 200; i++) w.appendPut(`k${i}`, `v${i}`);
  await w.sync();
  return config;
}

for (const placement of ["beside", "instead of"] as const) {
  Deno.test({
    name: `a non-canonical segment name ${placement} the canonical one is refused by open(), ` +
      `every recovery mode and wal verify`,
    ignore: ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      const config = await build(dir.path);
      const odd = `${config.baseDir}/wal-0-0.log`;
      if (placement === "beside") Deno.copyFileSync(config.segmentPath(0, 0), odd);
      else Deno.renameSync(config.segmentPath(0, 0), odd);
      const opened = await assertRejects(
        () => PerCoreWalManager.open(config),
        PerCoreWalError,
        `"${odd}"`,
      );
      assertEquals((opened as PerCoreWalError).code, "Corrupted");
      for (const mode of MODES) {
        const e = await assertRejects(
          () => recoverPerCore(config.baseDir, { mode, checkpointDir: false }),
          PerCoreWalError,
          `"${odd}"`,
          mode,
        );
        assertEquals((e as PerCoreWalError).code, "Corrupted", mode);
      }
      const v = await walVerify(config.baseDir);
      assertEquals(v.code, 1, v.text);
      assertStringIncludes(v.text, odd);
      // Refused, not changed: the file is still there with its data.
      assertEquals(Deno.statSync(odd).size, config.options.segmentSizeBytes);
    },
  });
}
