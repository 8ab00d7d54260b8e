// Where a follower starts: at the core's oldest segment, never at a later one because the oldest
// has no header yet. The race this replays (seen once in CI): a watch locates a core while its
// first batch is being written; the oldest segment reads as all zeros, the next one (prepared
// ahead) already got its header, and the follower started there, losing the first entries.
import { assertEquals } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { listCoreSegments } from "../src/segment_files.ts";
import { scanSegment } from "../src/segment_probes.ts";
import { CoreFollower, type DurableSource, pollingSource } from "../src/watch.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const VALUE = "v".repeat(400);

/** A WAL of one core whose first two segments (64 KiB each) are started; their paths. */
async function twoSegments(dir: string): Promise<{ config: PerCoreWalConfig; paths: string[] }> {
  const config = new PerCoreWalConfig(`${dir}/wal`, 1, { segmentSizeBytes: 64 * 1024 });
  {
    await using m = await PerCoreWalManager.open(config);
    const w = m.writer(0);
    for (let i = 0; i < 250; i++) w.appendPut(`k${i}`, VALUE);
    await w.sync();
  }
  const paths = listCoreSegments(config, 0).map((s) => s.path);
  return { config, paths };
}

/** A source whose durable end the test sets: nothing durable, then the files' end. */
function settableSource(config: PerCoreWalConfig) {
  let durable = false;
  const source: DurableSource = {
    end() {
      if (!durable) return { segment: 0, offset: 0, sequence: 0 };
      const segs = listCoreSegments(config, 0);
      const last = segs[segs.length - 1];
      return { segment: last.index, offset: Deno.statSync(last.path).size, sequence: 250 };
    },
    stopped: () => undefined,
    wait: () => Promise.resolve(),
  };
  return { source, makeDurable: () => durable = true };
}

for (const kind of ["manager's ends", "another process's files"] as const) {
  Deno.test({
    name: `a follower (${kind}) waits for the oldest segment's header, never starts at the next`,
    ignore: ignoreWithoutUring,
    fn: async () => {
      await using dir = await tempDir();
      const { config, paths } = await twoSegments(dir.path);
      assertEquals(paths.length >= 2, true, "two started segments");
      const first = Deno.readFileSync(paths[0]);
      // The moment of the race: the oldest segment as prepared (zeros), the next one started.
      Deno.writeFileSync(paths[0], new Uint8Array(first.length));
      const settable = settableSource(config);
      const source = kind === "another process's files" ? pollingSource(10) : settable.source;
      const follower = new CoreFollower(config, 0, source);
      assertEquals(await follower.read(1000), [], "nothing before the oldest segment starts");
      // The first batch lands.
      Deno.writeFileSync(paths[0], first);
      settable.makeDurable();
      const got = await follower.read(1000);
      assertEquals(got.map((e) => e.sequence), Array.from({ length: 250 }, (_, i) => i + 1));
    },
  });
}

Deno.test({
  name: "a follower whose segment was retired waits for the next segment's header, not Retired",
  ignore: ignoreWithoutUring,
  fn: async () => {
    await using dir = await tempDir();
    const { config, paths } = await twoSegments(dir.path);
    const { stats } = await scanSegment(paths[0]);
    const follower = new CoreFollower(config, 0, pollingSource(10));
    const head = await follower.read(stats.entryCount);
    assertEquals(head.at(-1)?.sequence, stats.lastSequence, "the first segment is read");
    // A checkpoint retires it while the next one is being started.
    Deno.removeSync(paths[0]);
    const second = Deno.readFileSync(paths[1]);
    Deno.writeFileSync(paths[1], new Uint8Array(second.length));
    assertEquals(await follower.read(1000), [], "waits: the next segment has no header yet");
    Deno.writeFileSync(paths[1], second);
    const got = await follower.read(1000);
    assertEquals(got[0]?.sequence, stats.lastSequence + 1, "goes on in the next segment");
    assertEquals(got.at(-1)?.sequence, 250);
  },
});
