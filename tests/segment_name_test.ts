// Segment file names parsed without a configuration (reading a directory before its wal.json).
import { assertEquals, assertThrows } from "@std/assert";
import { parseSegmentFileName, PerCoreWalConfig } from "../src/config.ts";

Deno.test("parseSegmentFileName() parses what PerCoreWalConfig.parseSegmentName parses", () => {
  const pattern = "log-{segment}-of-{core_id}.wal";
  const config = new PerCoreWalConfig("/wal", 2, { segmentPattern: pattern });
  for (const name of [config.segmentPath(1, 17).slice(5), "log-000003-of-1500.wal", "other"]) {
    assertEquals(parseSegmentFileName(pattern, name), config.parseSegmentName(name));
  }
  assertEquals(parseSegmentFileName(pattern, "log-000003-of-1500.wal"), {
    coreId: 1500,
    segment: 3,
  });
});

Deno.test("parseSegmentFileName() refuses a pattern the configuration refuses", () => {
  assertThrows(() => parseSegmentFileName("wal-{core_id}.log", "x"), RangeError, "{segment}");
});
