// Crash loop on real processes: a child appends with durable acknowledgements and is killed
// with SIGKILL at a seeded random moment; every acknowledged record must be there after
// reopening, each core's sequence must have no gap, and the WAL must go on. CYCLES=n, SEED=s.
import { assert, assertEquals } from "@std/assert";
import { PerCoreWalConfig } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { ignoreWithoutUring, readCore, rng, tempDir } from "./_helpers.ts";

Deno.test({
  name: "SIGKILL at random moments loses no acknowledged record and the WAL reopens every time",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const wal = `${dir.path}/wal`;
    const cycles = Number(Deno.env.get("CYCLES") ?? 8);
    const seed = Number(Deno.env.get("SEED") ?? 2026);
    const r = rng(seed);
    const child = new URL("./_crash_child.ts", import.meta.url).pathname;
    const acked = [0n, 0n];
    for (let cycle = 0; cycle < cycles; cycle++) {
      const proc = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", child, wal, String(cycle)],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      let ready = false;
      const killAt = 50 + Math.floor(r() * 400); // ms after the child is ready
      let deadline = Infinity;
      while (true) {
        const chunk = await Promise.race([
          reader.read(),
          new Promise<"timeout">((res) =>
            setTimeout(() => res("timeout"), Math.max(0, Math.min(deadline - Date.now(), 2000)))
          ),
        ]);
        if (chunk !== "timeout") {
          if (chunk.done) break;
          buf += chunk.value;
          const lines = buf.split("\n");
          buf = lines.pop()!;
          for (const l of lines) {
            if (l === "ready" && !ready) {
              ready = true;
              deadline = Date.now() + killAt;
            }
            const m = /^ack (\d) (\d+)$/.exec(l);
            if (m) {
              const c = Number(m[1]);
              const s = BigInt(m[2]);
              if (s > acked[c]) acked[c] = s;
            }
          }
        }
        if (Date.now() >= deadline) break;
      }
      proc.kill("SIGKILL");
      await reader.cancel().catch(() => {});
      await proc.status;
      await proc.stderr.cancel().catch(() => {});
      // Reopen: the WAL must open, hold every acknowledged record, and go on.
      const cfg = new PerCoreWalConfig(wal, 2, { segmentSizeBytes: 256 * 1024 });
      const m = await PerCoreWalManager.open(cfg);
      const seqs = [m.writer(0).sequence, m.writer(1).sequence];
      await m.close();
      for (const c of [0, 1]) {
        assert(
          seqs[c] >= acked[c],
          `seed ${seed} cycle ${cycle}: core ${c} acknowledged ${acked[c]}, has ${seqs[c]}`,
        );
        const entries = await readCore(cfg, c);
        entries.forEach((e, i) =>
          assertEquals(e.sequence, BigInt(i + 1), `seed ${seed} cycle ${cycle}: core ${c} gap`)
        );
      }
    }
    assert(acked[0] > 0n && acked[1] > 0n, "the children acknowledged records");
  },
});
