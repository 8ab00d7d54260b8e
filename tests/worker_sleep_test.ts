// How an idle core Worker sleeps and who wakes it: in the kernel on the io_uring backend (its
// producers write a bell eventfd), in Atomics.wait on the sync backend, and on Atomics again
// once a producer thread cannot write the bell (no FFI there). Real rings, eventfds, Workers and
// files.
import { assert, assertEquals } from "@std/assert";
import { lastErrno, libc } from "../ffi/libc.ts";
import { EFD_CLOEXEC } from "../ffi/layout.ts";
import { PerCoreWalConfig } from "../src/config.ts";
import { UringBackend } from "../src/io/uring.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { Control, IntSlot as I, Sleep } from "../src/shared.ts";
import { BACKENDS, ignoreWithoutUring, produce, tempDir } from "./_helpers.ts";

const EFD_NONBLOCK = 0o4000;

/** An eventfd (closed by the caller). */
function eventfd(flags = 0): number {
  const fd = libc().eventfd(0, EFD_CLOEXEC | flags);
  assert(fd >= 0, `eventfd failed: errno ${-lastErrno()}`);
  return fd;
}

/** The counter of a nonblocking eventfd, which the read resets (0: nothing was written). */
async function readCounter(fd: number): Promise<number> {
  const buf = new BigUint64Array(1);
  const n = Number(await libc().read_blocking(fd, new Uint8Array(buf.buffer), 8n));
  return n === 8 ? Number(buf[0]) : 0;
}

/** `p`, or a rejection after 10 s (a Worker that slept through its wake-up). */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within 10 s: ${what}`)), 10_000);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits (polling) until `cond()` holds, for up to 10 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    assert(Date.now() < end, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test("Control.ring() writes the bell of a Worker asleep in the kernel, once, and only then", async () => {
  const fd = eventfd(EFD_NONBLOCK);
  try {
    const ctl = new Control();
    const i32 = ctl.i32;
    Atomics.store(i32, I.BELL, fd + 1);
    // Awake: nothing to do.
    ctl.ring();
    assertEquals(await readCounter(fd), 0);
    // In the kernel: the first ring clears the flag and writes the bell; the next finds it awake.
    Atomics.store(i32, I.SLEEPING, Sleep.Kernel);
    ctl.ring();
    ctl.ring();
    assertEquals(await readCounter(fd), 1);
    assertEquals(Atomics.load(i32, I.SLEEPING), Sleep.Awake);
    assertEquals(Atomics.load(i32, I.RINGING), 0);
    // On Atomics: the doorbell moves, the bell stays silent.
    Atomics.store(i32, I.SLEEPING, Sleep.Atomics);
    const bell = Atomics.load(i32, I.DOORBELL);
    ctl.ring();
    assertEquals(Atomics.load(i32, I.DOORBELL), bell + 1);
    assertEquals(await readCounter(fd), 0);
    // No bell published (the Worker closed it): the ring is refused, nothing is written.
    Atomics.store(i32, I.BELL, 0);
    Atomics.store(i32, I.SLEEPING, Sleep.Kernel);
    ctl.ring();
    assertEquals(Atomics.load(i32, I.BELL_REFUSED), 1);
    assertEquals(await readCounter(fd), 0);
  } finally {
    libc().close(fd);
  }
});

Deno.test({
  name:
    "UringBackend.waitIdle wakes for a bell rung on another thread and for a completion, else times out",
  ignore: ignoreWithoutUring,
  async fn() {
    await using dir = await tempDir();
    const bell = eventfd();
    // No completion poll: the wait below is what notices the fdatasync.
    const io = new UringBackend({ ringEntries: 8, completionSpinUs: 0 });
    const ringer = new Worker(new URL("./_bell_ringer.ts", import.meta.url), { type: "module" });
    const f = io.openFile(`${dir.path}/a`, {
      createNew: true,
      direct: false,
      dsync: false,
      mode: 0o600,
    });
    try {
      assertEquals(io.waitIdle(bell, 5), "timeout");

      const ctl = new Control();
      Atomics.store(ctl.i32, I.BELL, bell + 1);
      const messages: string[] = [];
      let heard: () => void = () => {};
      ringer.onmessage = (e) => {
        messages.push(e.data);
        heard();
      };
      await new Promise<void>((r) => heard = r); // "ready"
      Atomics.store(ctl.i32, I.SLEEPING, Sleep.Kernel);
      ringer.postMessage({ control: ctl.sab, delayMs: 50 });
      // Blocks this thread until the other one rings (10 s would mean it did not).
      assertEquals(io.waitIdle(bell, 10_000), "woken");
      assertEquals(Atomics.load(ctl.i32, I.SLEEPING), Sleep.Awake);
      await new Promise<void>((r) => messages.length >= 2 ? r() : heard = r);
      assertEquals(messages, ["ready", "rang"]);

      let done = false;
      const write = io.writeParts(f, [{ offset: 0, data: new Uint8Array(4096).fill(7) }], true)
        .then(() => void (done = true));
      let waits = 0;
      while (!done && waits < 100) {
        assertEquals(io.waitIdle(bell, 10_000), "woken");
        waits++;
        await null; // the chain's promise handlers
      }
      await write;
      assert(done);
      const back = new Uint8Array(1);
      io.readAt(f, back, 0);
      assertEquals(back[0], 7);
    } finally {
      ringer.terminate();
      io.closeFile(f);
      await io.close();
      libc().close(bell);
    }
  },
});

for (const backend of BACKENDS) {
  Deno.test({
    name: `[${backend}] an idle core Worker sleeps ${
      backend === "io_uring" ? "in the kernel" : "on Atomics"
    }, producers on any thread wake it; a refused bell sends it to Atomics`,
    ignore: backend === "io_uring" && ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      // A minute-long idle wait: a producer's or a message's wake-up that got lost would leave
      // the Worker asleep far beyond the 10 s bounds below, not 50 ms.
      const m = await PerCoreWalManager.open(
        new PerCoreWalConfig(`${dir.path}/wal`, 1, { backend, segmentSizeBytes: 256 * 1024 }),
        { idleWaitMs: 60_000 },
      );
      const handle = m.writerHandle(0);
      const i32 = new Control(handle.control).i32;
      const idle = backend === "io_uring" ? Sleep.Kernel : Sleep.Atomics;
      try {
        const w = m.writer(0);
        for (let round = 0; round < 50; round++) {
          // Past the 20 ms in which it wakes to publish latency figures: asleep until woken.
          await new Promise((r) => setTimeout(r, 25));
          await until(() => Atomics.load(i32, I.SLEEPING) === idle, `asleep, round ${round}`);
          const seq = w.appendPut(`main-${round}`, "v");
          await within(w.waitDurable(seq), `record ${seq} durable`);
          assert(w.durableSequence >= seq);
        }
        assertEquals(Atomics.load(i32, I.BELL) > 0, backend === "io_uring");

        const acked = await within(produce([handle], 200, "worker", 16), "a producer Worker");
        assertEquals(acked.length, 200);
        assertEquals(Atomics.load(i32, I.BELL_REFUSED), 0);
        // What a producer thread without FFI does when it finds the Worker asleep in the kernel
        // (such a thread needs Deno's unstable Worker permissions to make): the core Worker
        // wakes (here: the main thread rings) and then sleeps where such a producer can wake it.
        Atomics.store(i32, I.BELL_REFUSED, 1);
        await within(w.waitDurable(w.appendPut("refused", "v")), "durable after the refusal");
        await until(() => Atomics.load(i32, I.SLEEPING) === Sleep.Atomics, "asleep on Atomics");
        const seq = w.appendPut("after", "v");
        await within(w.waitDurable(seq), "durable on Atomics");
        assertEquals(Atomics.load(i32, I.RINGING), 0);
      } finally {
        // close() is a message to the Worker: it must wake it too.
        await within(m.close(), "close()");
      }
      // The bell is closed with the core, and no producer is left writing to it.
      assertEquals(Atomics.load(i32, I.BELL), 0);
      assertEquals(Atomics.load(i32, I.RINGING), 0);
    },
  });
}

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `[${backend}] with syncDelayMs, a sync() reaches the disk after the delay, not after the Worker's idle wait`,
    ignore: backend === "io_uring" && ignoreWithoutUring,
    async fn() {
      await using dir = await tempDir();
      // The flush waits for a timer on the Worker's event loop: a Worker blocked for its whole
      // (here minute-long) idle wait would make each sync() that late.
      const m = await PerCoreWalManager.open(
        new PerCoreWalConfig(`${dir.path}/wal`, 1, {
          backend,
          syncDelayMs: 2,
          segmentSizeBytes: 256 * 1024,
        }),
        { idleWaitMs: 60_000 },
      );
      try {
        // The next segment's preparation (a zero-fill on the event loop for the sync backend)
        // is done: the Worker then truly sleeps.
        await new Promise((r) => setTimeout(r, 200));
        const w = m.writer(0);
        const i32 = new Control(m.writerHandle(0).control).i32;
        const idle = backend === "io_uring" ? Sleep.Kernel : Sleep.Atomics;
        for (let round = 0; round < 5; round++) {
          await new Promise((r) => setTimeout(r, 25));
          await until(() => Atomics.load(i32, I.SLEEPING) === idle, `asleep, round ${round}`);
          w.appendPut(`k${round}`, "v");
          await within(w.sync(), `sync() of round ${round}`);
        }
        assertEquals(w.durableSequence, 5);
      } finally {
        await within(m.close(), "close()");
      }
    },
  });
}
