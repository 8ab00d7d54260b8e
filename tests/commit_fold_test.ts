// The commit-offset fold that checkpoints and recovery share.
import { assertEquals } from "@std/assert";
import { foldCommit } from "../src/commit_fold.ts";

Deno.test("foldCommit() keeps the latest offset of each source and the watermark given with it", () => {
  const offsets = new Map<string, number>([["a", 1], ["b", 2]]);
  const watermarks = new Map<string, number>([["b", 5]]);
  let watermark: number | undefined = 5;
  watermark = foldCommit(
    { type: "commit", offsets: new Map([["a", 10], ["c", 3]]), watermark: 7 },
    offsets,
    watermarks,
    watermark,
  );
  assertEquals(watermark, 7);
  assertEquals([...offsets], [["a", 10], ["b", 2], ["c", 3]]);
  assertEquals([...watermarks], [["b", 5], ["a", 7], ["c", 7]]);
});

Deno.test("foldCommit() without a watermark keeps the previous watermarks", () => {
  const offsets = new Map<string, number>();
  const watermarks = new Map<string, number>([["a", 4]]);
  const watermark = foldCommit(
    { type: "commit", offsets: new Map([["a", 9]]) },
    offsets,
    watermarks,
    4,
  );
  assertEquals(watermark, 4);
  assertEquals([...offsets], [["a", 9]]);
  assertEquals([...watermarks], [["a", 4]]);
});
