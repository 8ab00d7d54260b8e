// The disk's limit, measured with fio (io_uring engine, a write then fdatasync per block, on a
// laid-out file like the WAL's pre-zeroed segments).
import type { RunResult } from "./workloads.ts";

/** fio's version, or undefined when fio is not installed. */
export async function fioVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("fio", { args: ["--version"], stdout: "piped" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** One fio run: `jobs` jobs writing `sizeBytes` each in blocks of `bs`, fdatasync after each. */
export async function runFio(
  dir: string,
  opts: { bs: number; jobs: number; sizeBytes: number; direct: boolean; recordsPerBlock: number },
): Promise<RunResult & { command: string }> {
  const args = [
    "--name=w",
    `--directory=${dir}`,
    "--ioengine=io_uring",
    "--rw=write",
    `--bs=${opts.bs}`,
    `--size=${opts.sizeBytes}`,
    "--fdatasync=1",
    "--overwrite=1",
    `--direct=${opts.direct ? 1 : 0}`,
    `--numjobs=${opts.jobs}`,
    "--group_reporting",
    "--output-format=json",
  ];
  const out = await new Deno.Command("fio", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`fio failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const job = JSON.parse(new TextDecoder().decode(out.stdout)).jobs[0];
  const write = job.write;
  const p = (q: string) =>
    ((write.clat_ns?.percentile?.[q] ?? 0) + (job.sync?.lat_ns?.percentile?.[q] ?? 0)) / 1000;
  const seconds = write.runtime / 1000;
  const iops = write.iops;
  return {
    records: write.total_ios * opts.recordsPerBlock,
    seconds,
    recordsPerSec: iops * opts.recordsPerBlock,
    mbPerSec: write.bw_bytes / 1e6,
    p50Us: p("50.000000"),
    p99Us: p("99.000000"),
    peakRssBytes: 0,
    backend: `fio io_uring ${opts.direct ? "O_DIRECT" : "buffered"}`,
    note: "latency: write p + fdatasync p",
    command: `fio ${args.filter((a) => !a.startsWith("--directory")).join(" ")}`,
  };
}
