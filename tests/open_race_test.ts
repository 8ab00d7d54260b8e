// Issue 18, item 7 (the rest): a FIFO swapped in between the type check and the open must not
// block a read-side open. The test hook of `src/fs.ts` (`beforeOpenForRead`) makes the swap at
// exactly that point; each open runs in a child process, which the test kills if it blocks.
import { assertEquals, assertMatch } from "@std/assert";
import { runDeno, tempDir } from "./_helpers.ts";

const CHILD = new URL("./_open_race_child.ts", import.meta.url).pathname;

// The race-free open needs FFI and Deno's --allow-all (for /proc/self/fd): the child has both.
for (const action of ["sync", "async"] as const) {
  const name = `openRegularFile${action === "async" ? "Async" : ""}`;
  Deno.test(`${name}: a FIFO swapped in after the lstat check is refused (Unsafe), never opened`, async () => {
    await using dir = await tempDir();
    // Not a timed assertion: a child that blocks on the FIFO never exits, and runDeno fails the
    // test after 30 s instead of hanging the run.
    const r = await runDeno(["run", "-A", CHILD, action, "fifo", dir.path], 30_000);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assertEquals(
      [out.swapped, out.ok, out.walError, out.code],
      [1, false, true, "Unsafe"],
      r.stdout,
    );
    assertMatch(out.message, new RegExp(`"${dir.path}/wal.json" is a FIFO`));
    // The FIFO is still there: nothing followed, removed or replaced it.
    assertEquals(Deno.lstatSync(`${dir.path}/wal.json`).isFifo, true);
  });

  Deno.test(`${name}: a symbolic link swapped in after the lstat check is refused (Unsafe), never followed`, async () => {
    await using dir = await tempDir();
    const r = await runDeno(["run", "-A", CHILD, action, "symlink", dir.path], 30_000);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assertEquals(
      [out.swapped, out.ok, out.walError, out.code],
      [1, false, true, "Unsafe"],
      r.stdout,
    );
    assertMatch(out.message, new RegExp(`"${dir.path}/wal.json" is a symbolic link`));
  });
}
