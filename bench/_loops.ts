// Workload loops shared by the measuring scripts that drive a log directly (thread_cpu.ts,
// warmup.ts). bench/compare/run.ts keeps its own, which also record each latency.

/** What the loops need from a log: the manager's writer and `CoreLog` both have it. */
export interface LoopLog {
  appendPut(key: Uint8Array, value: Uint8Array): number;
  waitDurable(sequence: number): Promise<void>;
}

/** The 512 keys (16 bytes each) the 128-byte records of the comparison cycle through. */
export const KEYS: readonly Uint8Array[] = Array.from(
  { length: 512 },
  (_, i) => new TextEncoder().encode(`key-${String(i).padStart(12, "0")}`),
);

/** W3: `producers` concurrent producers on one log, each awaiting its own record durable. */
export async function groupCommit(
  log: LoopLog,
  records: number,
  value: Uint8Array,
  producers = 64,
): Promise<void> {
  let next = 0;
  const producer = async () => {
    while (next < records) {
      const i = next++;
      await log.waitDurable(log.appendPut(KEYS[i & 511], value));
    }
  };
  await Promise.all(Array.from({ length: producers }, producer));
}
