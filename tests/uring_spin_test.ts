// The io_uring backend's completion poll: a lone write + fdatasync is noticed by polling the
// CQ ring, and an acknowledgement still waits for the fdatasync's own completion.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { UringBackend } from "../src/io/uring.ts";
import { PerCoreWalError } from "../src/errors.ts";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

const OPEN = { createNew: true, direct: false, dsync: false, mode: 0o600 };

Deno.test({
  name: "UringBackend polls the CQ ring for a lone write + fdatasync and the data is written",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    // A 1 s bound: every sync on a working disk completes inside it, so every one is a hit.
    const io = new UringBackend({ ringEntries: 8, completionSpinUs: 1_000_000 });
    const f = io.openFile(`${dir.path}/a`, OPEN);
    try {
      for (let i = 0; i < 4; i++) {
        const data = new Uint8Array(4096).fill(i + 1);
        await io.writeParts(f, [{ offset: i * 4096, data }], true);
      }
      assertEquals(io.spinHits, 4);
      assertEquals(io.spinMisses, 0);
      const back = new Uint8Array(4 * 4096);
      assertEquals(io.readAt(f, back, 0), back.length);
      for (let i = 0; i < 4; i++) assertEquals(back[i * 4096], i + 1);
    } finally {
      io.closeFile(f);
      await io.close();
    }
  },
});

Deno.test({
  name: "UringBackend with completionSpinUs 0 never polls and still completes syncs",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const io = new UringBackend({ ringEntries: 8, completionSpinUs: 0 });
    const f = io.openFile(`${dir.path}/a`, OPEN);
    try {
      await io.writeParts(f, [{ offset: 0, data: new Uint8Array(4096).fill(9) }], true);
      assertEquals(io.spinHits + io.spinMisses, 0);
      const back = new Uint8Array(1);
      io.readAt(f, back, 0);
      assertEquals(back[0], 9);
    } finally {
      io.closeFile(f);
      await io.close();
    }
  },
});

Deno.test({
  name: "UringBackend rejects a sync whose fdatasync fails even when found by polling",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const io = new UringBackend({ ringEntries: 8, completionSpinUs: 1_000_000 });
    const f = io.openFile(`${dir.path}/a`, OPEN);
    io.closeFile(f); // fd -1: the kernel completes the FSYNC with -EBADF
    try {
      const err = await assertRejects(
        () => io.writeParts(f, [], true),
        PerCoreWalError,
        "fdatasync",
      );
      assertEquals(err.code, "Io");
      assert(io.spinHits === 1, `the failed fdatasync was found by polling (${io.spinHits})`);
    } finally {
      await io.close();
    }
  },
});

Deno.test("UringBackend refuses a negative completionSpinUs", () => {
  assertThrows(() => new UringBackend({ ringEntries: 8, completionSpinUs: -1 }), RangeError);
});

Deno.test({
  name: "UringBackend ends the poll when completionSpinStop says other work waits",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    let asked = 0;
    const io = new UringBackend({
      ringEntries: 8,
      completionSpinUs: 1_000_000,
      completionSpinStop: () => ++asked > 0,
    });
    const f = io.openFile(`${dir.path}/a`, OPEN);
    try {
      await io.writeParts(f, [{ offset: 0, data: new Uint8Array(4096).fill(3) }], true);
      // Stopped early, not timed out: no backoff, and the eventfd completed the sync.
      assertEquals(io.spinHits + io.spinMisses, 0);
      assert(asked > 0, "the stop hook was consulted");
      const back = new Uint8Array(1);
      io.readAt(f, back, 0);
      assertEquals(back[0], 3);
    } finally {
      io.closeFile(f);
      await io.close();
    }
  },
});
