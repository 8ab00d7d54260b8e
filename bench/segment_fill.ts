// segmentFill policies side by side: "zeros" (fallocate + zero-fill), "allocate" (fallocate
// only) and "auto", on a W4-like bandwidth workload and a W2s-like single-record one, through the
// manager (Worker, io_uring, default options otherwise). Each run is its own process; policies
// alternate (A B C A B C ...). Besides the rate it reports the bytes the disk was asked to write
// during the timed part (/proc/diskstats, sectors written), which shows the zero-fill doubling.
//
// Usage: deno run -A bench/segment_fill.ts [--workload w4|w2s|w1] [--runs 3] [--fills a,b,c]
//        [--dir bench/.data/segment_fill] [--device vda] [--options '{"maxBatchBytes":2097152}']
//        [--batch 64]
import { parseArgs } from "@std/cli/parse-args";
import {
  PerCoreWalConfig,
  PerCoreWalManager,
  type PerCoreWalOptions,
  type SegmentFill,
} from "../mod.ts";
import { threadCpu } from "./_schedstat.ts";

interface Shape {
  records: number;
  valueBytes: number;
  /** Records per sync(); 1 = each append awaited durable. */
  batch: number;
  inFlight: number;
}

const SHAPES: Record<string, Shape> = {
  // W4: 4 KiB records (16-byte key + 4080-byte value), sync() every 256 (1 MiB), 8 in flight.
  w4: { records: 65_536, valueBytes: 4080, batch: 256, inFlight: 8 },
  // W2s: 128-byte records, each awaited durable.
  w2s: { records: 5_000, valueBytes: 112, batch: 1, inFlight: 1 },
  // W1: 128-byte records, sync() every 512, 8 in flight.
  w1: { records: 200_000, valueBytes: 112, batch: 512, inFlight: 8 },
};

interface Result {
  fill: string;
  seconds: number;
  mbPerSec: number;
  recordsPerSec: number;
  p50Us: number;
  p99Us: number;
  diskWrittenMiB: number;
  backend: string;
  /** CPU time of the busiest threads during the timed part, ms, by thread name. */
  cpuMs: Record<string, number>;
}

async function sectorsWritten(device: string): Promise<number> {
  // /proc needs broad read permissions; a shell reads it instead.
  const out = await new Deno.Command("sh", {
    args: ["-c", `awk '$3=="${device}"{print $10}' /proc/diskstats`],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim() || 0);
}

async function child(
  fill: SegmentFill,
  shape: Shape,
  dir: string,
  device: string,
  options: PerCoreWalOptions,
) {
  const manager = await PerCoreWalManager.open(
    new PerCoreWalConfig(dir, 1, { backend: "io_uring", ...options, segmentFill: fill }),
  );
  try {
    await new Promise((r) => setTimeout(r, 1500)); // the next segment's preparation
    const w = manager.writer(0);
    const key = new TextEncoder().encode("key-000000000000");
    const value = new Uint8Array(shape.valueBytes).fill(0x5a);
    const lat: number[] = [];
    const c0 = await threadCpu();
    const s0 = await sectorsWritten(device);
    const t0 = performance.now();
    if (shape.batch === 1) {
      for (let i = 0; i < shape.records; i++) {
        const t1 = performance.now();
        await w.waitDurable(w.appendPut(key, value));
        lat.push((performance.now() - t1) * 1000);
      }
    } else {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < shape.records; i += shape.batch) {
        for (let k = 0; k < shape.batch; k++) w.appendPut(key, value);
        const t1 = performance.now();
        pending.push(w.sync().then(() => void lat.push((performance.now() - t1) * 1000)));
        while (pending.length >= shape.inFlight) await pending.shift();
      }
      await Promise.all(pending);
    }
    const seconds = (performance.now() - t0) / 1000;
    const s1 = await sectorsWritten(device);
    const c1 = await threadCpu();
    const cpuMs: Record<string, number> = {};
    for (const [k, v] of c1) {
      const ms = (v - (c0.get(k) ?? 0)) / 1e6;
      if (ms >= 1) cpuMs[k.split("/")[0]] = (cpuMs[k.split("/")[0]] ?? 0) + Math.round(ms);
    }
    lat.sort((a, b) => a - b);
    const bytes = shape.records * (16 + shape.valueBytes);
    const result: Result = {
      fill,
      seconds,
      mbPerSec: bytes / seconds / 1e6,
      recordsPerSec: shape.records / seconds,
      p50Us: lat[Math.floor(lat.length * 0.5)],
      p99Us: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))],
      diskWrittenMiB: (s1 - s0) * 512 / 2 ** 20,
      backend: manager.backend,
      cpuMs,
    };
    console.log(JSON.stringify(result));
  } finally {
    await manager.close();
  }
}

const args = parseArgs(Deno.args, {
  string: ["workload", "fills", "dir", "device", "child", "options", "batch"],
  default: {
    workload: "w4",
    runs: 3,
    fills: "zeros,allocate,auto",
    dir: "bench/.data/segment_fill",
    device: "vda",
    options: "{}",
  },
});
const known = SHAPES[args.workload];
if (known === undefined) throw new RangeError(`unknown workload ${args.workload}`);
// --batch overrides the records per sync() (W4: 64 = 256 KiB per sync).
const shape = args.batch === undefined ? known : { ...known, batch: Number(args.batch) };
if (args.child !== undefined) {
  const options = JSON.parse(args.options);
  await child(args.child as SegmentFill, shape, args.dir, args.device, options);
} else {
  const fills = args.fills.split(",");
  const results: Record<string, Result[]> = {};
  for (let run = 0; run < Number(args.runs); run++) {
    for (const fill of fills) {
      await Deno.remove(args.dir, { recursive: true }).catch(() => {});
      await Deno.mkdir(args.dir, { recursive: true });
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          import.meta.filename!,
          "--child",
          fill,
          "--workload",
          args.workload,
          "--dir",
          args.dir,
          "--device",
          args.device,
          "--options",
          args.options,
          ...(args.batch === undefined ? [] : ["--batch", args.batch]),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`run of ${fill} failed`);
      const r: Result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      (results[fill] ??= []).push(r);
      console.error(
        `${args.workload} ${fill.padEnd(8)} ${r.mbPerSec.toFixed(0).padStart(5)} MB/s ` +
          `${r.recordsPerSec.toFixed(0).padStart(7)} rec/s p50 ${r.p50Us.toFixed(0)} µs ` +
          `p99 ${r.p99Us.toFixed(0)} µs disk ${r.diskWrittenMiB.toFixed(0)} MiB; ` +
          `${r.seconds.toFixed(2)} s, CPU ms ${JSON.stringify(r.cpuMs)}`,
      );
    }
  }
  await Deno.remove(args.dir, { recursive: true }).catch(() => {});
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `| ${args.workload}${
      args.batch ? ` (${args.batch}/sync)` : ""
    } | MB/s | records/s | p50 µs | p99 µs | disk MiB written |`,
  );
  console.log("|---|---|---|---|---|---|");
  for (const fill of fills) {
    const rs = results[fill];
    const m = (f: (r: Result) => number) => median(rs.map(f)).toFixed(0);
    console.log(
      `| ${fill} | ${m((r) => r.mbPerSec)} | ${m((r) => r.recordsPerSec)} | ${
        m((r) => r.p50Us)
      } | ${m((r) => r.p99Us)} | ${m((r) => r.diskWrittenMiB)} |`,
    );
  }
}
