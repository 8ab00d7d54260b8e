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

Deno.test("out-of-range values in wal.json: recoverPerCore says wal.json and the field; wal verify prints one line, no stack", async () => {
  const { recoverPerCore } = await import("../src/recovery.ts");
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  for (
    const [field, value] of [
      ["numCores", 1e12],
      ["maxRecordBytes", -5],
      ["segmentPattern", "../x-{core_id}-{segment}.log"],
    ] as const
  ) {
    const dir = Deno.makeTempDirSync();
    try {
      const meta = { formatVersion: 2, numCores: 1, segmentPattern: "wal-{core_id}-{segment}.log" };
      Deno.writeTextFileSync(`${dir}/wal.json`, JSON.stringify({ ...meta, [field]: value }));
      const e = await recoverPerCore(dir).then(() => undefined, (e) => e);
      if (!(e instanceof PerCoreWalError)) throw new Error(`${field}: ${e}`);
      assertStringIncludes(e.message, "wal.json");
      assertStringIncludes(e.message, field);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "verify", dir],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const err = new TextDecoder().decode(out.stderr).trim();
      assertEquals(out.code !== 0, true, err);
      assertStringIncludes(err, "wal.json");
      assertEquals(err.includes("    at "), false, `no stack trace: ${err}`);
      assertEquals(err.includes("\x1b["), false, "no colour codes");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
});
