// The first entry of a core that was empty when a watch began: the follower asks the source for
// the core's durable end even before the core has a segment, so that the manager's wait wakes
// on that core's first sync (it waits only on the cores asked; before, the first entry came
// after the wait's one-second timer: the shipper's one-second stall, issue 17).
import { assertEquals } from "@std/assert";
import { PerCoreWalManager } from "../src/manager.ts";
import { CoreFollower, type DurableSource } from "../src/watch.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

Deno.test({
  name: "a follower of a core with no entry yet asks its source for the core's durable end",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using dir = await tempDir();
    await using m = await PerCoreWalManager.open(`${dir.path}/wal`, {
      cores: 2,
      segmentSizeBytes: 64 * 1024,
    });
    const asked: number[] = [];
    // The manager's durable ends, recording which cores a follower asks for.
    const source: DurableSource = {
      end(coreId) {
        asked.push(coreId);
        const p = m.syncedPositions()[coreId];
        return { segment: p.segment, offset: p.offset, sequence: p.sequence };
      },
      stopped: () => undefined,
      wait: () => Promise.resolve(),
    };
    const follower = new CoreFollower(m.config, 1, source);
    assertEquals(await follower.read(10), [], "core 1 has no entry yet");
    assertEquals(asked, [1], "its durable end was asked: a wait can wake on its first sync");
    m.writer(1).appendPut("k", "v");
    await m.syncAll();
    const got = await follower.read(10);
    assertEquals(got.map((e) => [e.coreId, e.sequence]), [[1, 1]]);
  },
});
