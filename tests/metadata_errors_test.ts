// The files beside the segments (wal.json, the lock, checkpoints, state files) fail with
// nothing but PerCoreWalError: their file-system calls go through src/fs.ts.
import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { chooseCheckpoint, readCheckpoint } from "../src/checkpoint.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { StateFile } from "../src/state_file.ts";
import { configFromDirectory, readWalMeta } from "../src/wal_meta.ts";

function withTempDir(fn: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "percore-wal-meta-" });
  try {
    fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function assertIoError(fn: () => unknown, errno: string): void {
  const e = assertThrows(fn);
  assertInstanceOf(e, PerCoreWalError);
  assertEquals([e.code, e.errno], ["Io", errno]);
}

Deno.test("readWalMeta() of a wal.json that cannot be read throws PerCoreWalError Io", () => {
  withTempDir((dir) => {
    Deno.mkdirSync(`${dir}/wal.json`);
    assertIoError(() => readWalMeta(dir), "EISDIR");
  });
});

Deno.test("configFromDirectory() of a path that is a file throws PerCoreWalError Io", () => {
  withTempDir((dir) => {
    Deno.writeTextFileSync(`${dir}/file`, "");
    assertIoError(() => configFromDirectory(`${dir}/file`), "ENOTDIR");
  });
});

Deno.test("chooseCheckpoint() of a checkpoint directory that is a file throws PerCoreWalError Io", () => {
  withTempDir((dir) => {
    Deno.writeTextFileSync(`${dir}/checkpoints`, "");
    assertIoError(() => chooseCheckpoint(`${dir}/checkpoints`), "ENOTDIR");
  });
});

Deno.test("readCheckpoint() of a directory without a manifest says so", () => {
  withTempDir((dir) => {
    assertEquals(readCheckpoint(dir), { invalid: "no manifest" });
  });
});

Deno.test("StateFile.open() of a missing file throws SegmentNotFound", () => {
  withTempDir((dir) => {
    const e = assertThrows(() => StateFile.open(`${dir}/state.kv`));
    assertInstanceOf(e, PerCoreWalError);
    assertEquals(e.code, "SegmentNotFound");
  });
});
