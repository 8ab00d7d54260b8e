// The crash loop on real processes, shared by `tests/crash_test.ts` (CI) and
// `deno task test:crash [--cycles N] [--seed S]`.
//
// Each cycle a child process (`tests/_crash_child.ts`) opens a `PerCoreWalManager` on 2 cores
// with small segments, appends from two producers (its main thread and an application Worker
// attached through `writerHandle()`), takes checkpoints, and prints every durably acknowledged
// record as `a <core> <seq> <key>`, plus markers (`rotating`, `checkpoint-step <step>`). The
// parent kills it with SIGKILL at a seeded moment: after a random delay, right after a given
// checkpoint step, or right after a segment rotation. Then it checks, with recovery
// (`recoverPerCore`, checkpoint in play) and with the manager, that every acknowledged record is
// there exactly once with its exact bytes, that each core's sequences run without gap, that every
// record read back is one a producer wrote, and that the WAL opens and goes on; the next cycle's
// appends are checked after the next kill.
import { parseArgs } from "@std/cli/parse-args";
import { PerCoreWalConfig, type PerCoreWalOptions, type SegmentFill } from "../src/config.ts";
import { PerCoreWalManager } from "../src/manager.ts";
import { recoverPerCore } from "../src/recovery.ts";
import { readCore, rng } from "./_helpers.ts";

/**
 * Options of the child's WAL: small segments so that rotations are frequent. `SEGMENT_FILL`
 * (environment) sets `segmentFill` (default "auto").
 */
export const CRASH_OPTIONS: PerCoreWalOptions = {
  segmentSizeBytes: 64 * 1024,
  maxRecordBytes: 4096,
  sharedBufferBytes: 1024 * 1024,
  segmentFill: (Deno.env.get("SEGMENT_FILL") ?? "auto") as SegmentFill,
};

/** The number of cores of the child's WAL. */
export const CRASH_CORES = 2;

/** The key of record `i` of producer `producer` in cycle `cycle`. */
export function crashKey(cycle: number, producer: number, i: number): string {
  return `c${cycle}-p${producer}-${i}`;
}

/** The value stored under `key`: derived from it alone, 1 to 300 bytes. */
export function crashValue(key: string): Uint8Array {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  const out = new Uint8Array(1 + (h % 300));
  for (let i = 0; i < out.length; i++) {
    h = Math.imul(h ^ i, 0x01000193) >>> 0;
    out[i] = h & 0xff;
  }
  return out;
}

const KEY_RE = /^c(\d+)-p(\d+)-(\d+)$/;
const STEPS = ["barriersDurable", "stateWritten", "renamed", "retiring", "done"] as const;

/** How a cycle's child is killed. */
export type KillPlan =
  | { kind: "delay"; ms: number }
  | { kind: "checkpoint"; step: typeof STEPS[number]; nth: number }
  | { kind: "rotation"; nth: number };

/** The kill plan of a cycle, from the seeded generator. */
export function killPlan(r: () => number): KillPlan {
  const x = r();
  if (x < 0.34) return { kind: "delay", ms: 30 + Math.floor(r() * 600) };
  if (x < 0.67) {
    return {
      kind: "checkpoint",
      step: STEPS[Math.floor(r() * STEPS.length)],
      nth: 1 + (r() < 0.5 ? 0 : 1),
    };
  }
  return { kind: "rotation", nth: 1 + Math.floor(r() * 6) };
}

/** What a run did. */
export interface CrashLoopResult {
  cycles: number;
  acked: number;
  kills: Record<string, number>;
  fallbacks: number;
  checkpointsUsed: number;
}

/** Options of {@linkcode runCrashLoop}. */
export interface CrashLoopOptions {
  /** The directory the WAL (`wal/`) and its checkpoints (`checkpoints/`) live in. */
  dir: string;
  cycles: number;
  seed: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

const _eq = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);
const _dec = new TextDecoder();

/**
 * Runs the crash loop; throws an `Error` naming the seed, the cycle and what was wrong.
 */
export async function runCrashLoop(o: CrashLoopOptions): Promise<CrashLoopResult> {
  const wal = `${o.dir}/wal`;
  const r = rng(o.seed);
  const child = new URL("./_crash_child.ts", import.meta.url).pathname;
  // key → [core, sequence] of every acknowledged record, over all cycles.
  const acked = new Map<string, [number, number]>();
  const ackedMax = new Array<number>(CRASH_CORES).fill(0);
  const result: CrashLoopResult = {
    cycles: 0,
    acked: 0,
    kills: {},
    fallbacks: 0,
    checkpointsUsed: 0,
  };
  for (let cycle = 0; cycle < o.cycles; cycle++) {
    const plan = killPlan(r);
    const fail = (what: string): never => {
      throw new Error(
        `crash loop seed ${o.seed} cycle ${cycle} (kill ${JSON.stringify(plan)}): ${what}`,
      );
    };
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, wal, String(cycle)],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(proc.stderr).text();
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let deadline = Date.now() + 20_000; // until ready; then per plan
    let killed = false;
    let fallback = false;
    let steps = 0;
    let rotations = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let pendingRead: ReturnType<typeof reader.read> | undefined;
    while (!killed) {
      pendingRead ??= reader.read();
      const chunk = await Promise.race([
        pendingRead,
        new Promise<"timeout">((res) => {
          timer = setTimeout(() => res("timeout"), Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (chunk === "timeout") {
        if (plan.kind !== "delay") fallback = true;
        break;
      }
      pendingRead = undefined;
      if (chunk.done) break;
      buf += chunk.value;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith("a ")) {
          const [, c, s, key] = l.split(" ");
          const core = Number(c);
          const seq = Number(s);
          acked.set(key, [core, seq]);
          if (seq > ackedMax[core]) ackedMax[core] = seq;
        } else if (l === "ready") {
          // A delay plan counts from ready; marker plans fall back to a kill after 5 s.
          deadline = Date.now() + (plan.kind === "delay" ? plan.ms : 5000);
        } else if (l === "rotating") {
          if (plan.kind === "rotation" && ++rotations === plan.nth) killed = true;
        } else if (l.startsWith("checkpoint-step ")) {
          if (plan.kind === "checkpoint" && l.endsWith(` ${plan.step}`) && ++steps === plan.nth) {
            killed = true;
          }
        }
        if (killed) break; // the acks printed after the kill moment are not needed
      }
    }
    try {
      proc.kill("SIGKILL");
    } catch {
      // It exited by itself: a failure, reported below with its stderr.
    }
    pendingRead?.catch(() => {});
    await reader.cancel().catch(() => {});
    const status = await proc.status;
    const err = await stderr;
    if (status.signal !== "SIGKILL") fail(`the child exited by itself (${status.code}): ${err}`);
    if (fallback) result.fallbacks++;
    result.kills[plan.kind] = (result.kills[plan.kind] ?? 0) + 1;
    // Format v2 tells a crash tail (batches in flight when the process died) from corruption,
    // so any refusal to reopen after a kill is a failure.
    await _verify(wal, acked, ackedMax, fail, result);
    result.cycles++;
    result.acked = acked.size;
    o.log?.(
      `cycle ${cycle}: kill ${plan.kind}${fallback ? " (fallback)" : ""}, ${acked.size} acked`,
    );
  }
  return result;
}

async function _verify(
  wal: string,
  acked: Map<string, [number, number]>,
  ackedMax: number[],
  fail: (what: string) => never,
  result: CrashLoopResult,
): Promise<void> {
  const check = (key: string, value: Uint8Array, where: string): void => {
    if (!KEY_RE.test(key)) fail(`${where}: key "${key}" was never written`);
    if (!_eq(value, crashValue(key))) {
      fail(`${where}: value of "${key}" differs from the written one`);
    }
  };
  // 1. Recovery with the checkpoint in play (cuts a torn tail under the lock).
  {
    using rec = await recoverPerCore(wal);
    if (rec.checkpoint !== undefined) result.checkpointsUsed++;
    let found = 0;
    for (const [k, v] of rec.state) {
      const key = _dec.decode(k);
      check(key, v, "recovered state");
      if (acked.has(key)) found++;
    }
    if (found !== acked.size) {
      const missing = [...acked.keys()].filter((k) => !rec.state.has(k)).slice(0, 5);
      fail(`recovery lost ${acked.size - found} acknowledged records, e.g. ${missing.join(", ")}`);
    }
    for (let c = 0; c < CRASH_CORES; c++) {
      const p = rec.walPositions.find((x) => x.coreId === c);
      if (p === undefined || p.sequence < ackedMax[c]) {
        fail(`recovery ends core ${c} at ${p?.sequence}, before acknowledged ${ackedMax[c]}`);
      }
    }
  }
  // 2. The manager reopens every core after the last acknowledged record.
  const config = new PerCoreWalConfig(wal, CRASH_CORES, CRASH_OPTIONS);
  const m = await PerCoreWalManager.open(config);
  const seqs = Array.from({ length: CRASH_CORES }, (_, c) => m.writer(c).sequence);
  await m.close();
  // 3. The segments still on disk: sequences without gap, each key once, exact bytes.
  const seen = new Map<string, [number, number]>();
  for (let c = 0; c < CRASH_CORES; c++) {
    if (seqs[c] < ackedMax[c]) {
      fail(`core ${c} reopened at ${seqs[c]}, acknowledged ${ackedMax[c]}`);
    }
    const entries = await readCore(config, c);
    const first = entries.length > 0 ? entries[0].sequence : seqs[c] + 1;
    entries.forEach((e, i) => {
      if (e.sequence !== first + i) fail(`core ${c}: sequence ${e.sequence} at index ${i}`);
      if (e.coreId !== c) fail(`core ${c}: entry of core ${e.coreId}`);
      if (e.operation.type !== "put") return;
      const key = _dec.decode(e.operation.key);
      check(key, e.operation.value, `core ${c} sequence ${e.sequence}`);
      if (seen.has(key)) {
        fail(`"${key}" is twice in the log (${seen.get(key)} and ${c}/${e.sequence})`);
      }
      seen.set(key, [c, e.sequence]);
    });
    const last = entries.length > 0 ? entries[entries.length - 1].sequence : first - 1;
    if (last !== seqs[c]) {
      fail(`core ${c}: log ends at ${last}, manager continues after ${seqs[c]}`);
    }
    for (const [key, [core, seq]] of acked) {
      if (core !== c || seq < first) continue; // earlier ones are in the checkpoint
      const at = seen.get(key);
      if (at === undefined || at[0] !== c || at[1] !== seq) {
        fail(`acknowledged "${key}" at ${c}/${seq} is ${at ? `at ${at}` : "missing"} in the log`);
      }
    }
  }
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { string: ["cycles", "seed", "dir"] });
  const cycles = Number(args.cycles ?? 30);
  const seed = Number(args.seed ?? Math.floor(Math.random() * 2 ** 31));
  if (!Number.isInteger(cycles) || cycles < 1 || !Number.isInteger(seed)) {
    console.error("usage: deno task test:crash [--cycles N] [--seed S]");
    Deno.exit(2);
  }
  const dir = args.dir ?? await Deno.makeTempDir({ prefix: "percore-wal-crash-" });
  const replay = `deno task test:crash --cycles ${cycles} --seed ${seed}`;
  console.log(`crash loop: ${cycles} cycles, seed ${seed}, in ${dir}`);
  const t0 = performance.now();
  try {
    const res = await runCrashLoop({
      dir,
      cycles,
      seed,
      log: (l) => console.log(l),
    });
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `PASS: ${res.cycles} cycles in ${s} s, seed ${seed}: ${res.acked} records acknowledged, ` +
        `kills ${JSON.stringify(res.kills)}, ${res.fallbacks} marker kills fell back to a delay, ` +
        `recovery used a checkpoint in ${res.checkpointsUsed} cycles`,
    );
    if (args.dir === undefined) await Deno.remove(dir, { recursive: true });
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    console.error(`FAIL (files kept in ${dir}); replay: ${replay}`);
    Deno.exit(1);
  }
}
