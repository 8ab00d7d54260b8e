// The README's main job, run as users run it (a subprocess with the task's permissions).
import { assert, assertMatch } from "@std/assert";
import { ignoreWithoutUring, tempDir } from "./_helpers.ts";

Deno.test({
  name: "the demo ingests, checkpoints, survives a SIGKILLed child and recovers every event",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const demo = new URL("../demo.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-ffi",
        "--allow-env",
        "--allow-run",
        demo,
        "--dir",
        `${dir.path}/wal`,
        "--events",
        "20000",
        "--cores",
        "2",
        "--backend",
        "io_uring",
        "--kill-after-ms",
        "300",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, text + new TextDecoder().decode(out.stderr));
    assertMatch(text, /child process killed \(signal SIGKILL\)/);
    assertMatch(text, /summary: \d+ acknowledged events, all recovered byte for byte/);
    assertMatch(text, /backend io_uring\/direct/);
    const ckpts = await Array.fromAsync(Deno.readDir(`${dir.path}/wal/checkpoints`));
    assert(ckpts.some((e) => /^ckpt-\d+$/.test(e.name)), "a checkpoint was written");
  },
});
