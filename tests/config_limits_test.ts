/**
 * Configuration limits and `wal.json`'s values: an error names the option (or `wal.json` and its
 * field) and the limit that applies to it.
 */

import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { PerCoreWalConfig, walJsonError } from "../src/config.ts";
import { PerCoreWalError } from "../src/errors.ts";

Deno.test("maxRecordBytes above what the shared buffer can hold names maxRecordBytes and its limit", () => {
  const limit = 2 ** 29 - 8;
  for (const maxRecordBytes of [2 ** 29, 600 * 1024 * 1024, 2 ** 30]) {
    const e = assertThrows(
      () => new PerCoreWalConfig("/wal", 1, { maxRecordBytes, segmentSizeBytes: 2 ** 31 }),
      RangeError,
    );
    assertStringIncludes(e.message, "maxRecordBytes");
    assertStringIncludes(e.message, String(limit));
    assertEquals(e.message.includes("sharedBufferBytes must"), false, e.message);
  }
  const c = new PerCoreWalConfig("/wal", 1, { maxRecordBytes: limit, segmentSizeBytes: 2 ** 31 });
  assertEquals(c.options.maxRecordBytes, limit);
  assertEquals(c.options.sharedBufferBytes, 2 ** 30);
});

Deno.test("walJsonError: a wal.json value the configuration refuses is 'Corrupted', naming the file and the field", () => {
  const cases: [() => unknown, string][] = [
    [() => new PerCoreWalConfig("/wal", 1e12), "numCores"],
    [() => new PerCoreWalConfig("/wal", 1, { maxRecordBytes: -5 }), "maxRecordBytes"],
    [() => new PerCoreWalConfig("/wal", 1, { segmentPattern: "../x" }), "segmentPattern"],
  ];
  for (const [make, field] of cases) {
    let thrown: unknown;
    try {
      make();
    } catch (e) {
      thrown = walJsonError("/wal/wal.json", e);
    }
    if (!(thrown instanceof PerCoreWalError)) throw new Error(`${field}: ${thrown}`);
    assertEquals(thrown.code, "Corrupted");
    assertEquals(thrown.segment, "/wal/wal.json");
    assertStringIncludes(thrown.message, `"/wal/wal.json"`);
    assertStringIncludes(thrown.message, `field "${field}"`);
    assertEquals(thrown.message.includes("\n"), false);
  }
  // Anything else is not about wal.json's values: passed through.
  const other = new Error("x");
  assertEquals(walJsonError("/wal/wal.json", other), other);
});
