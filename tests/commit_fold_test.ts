// The commit-offset fold that checkpoints and recovery share.
import { assertEquals } from "@std/assert";
import { foldCommit } from "../src/commit_fold.ts";

Deno.test("foldCommit() keeps the latest offset of each source and the watermark given with it", () => {
  const offsets = new Map<string, bigint>([["a", 1n], ["b", 2n]]);
  const watermarks = new Map<string, bigint>([["b", 5n]]);
  let watermark: bigint | undefined = 5n;
  watermark = foldCommit(
    { type: "commit", offsets: new Map([["a", 10n], ["c", 3n]]), watermark: 7n },
    offsets,
    watermarks,
    watermark,
  );
  assertEquals(watermark, 7n);
  assertEquals([...offsets], [["a", 10n], ["b", 2n], ["c", 3n]]);
  assertEquals([...watermarks], [["b", 5n], ["a", 7n], ["c", 7n]]);
});

Deno.test("foldCommit() without a watermark keeps the previous watermarks", () => {
  const offsets = new Map<string, bigint>();
  const watermarks = new Map<string, bigint>([["a", 4n]]);
  const watermark = foldCommit(
    { type: "commit", offsets: new Map([["a", 9n]]) },
    offsets,
    watermarks,
    4n,
  );
  assertEquals(watermark, 4n);
  assertEquals([...offsets], [["a", 9n]]);
  assertEquals([...watermarks], [["a", 4n]]);
});
