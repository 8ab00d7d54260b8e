// A deterministic workload and the state it must produce. Each key and each source belongs to
// one core (as an application partitions them), so the expected state does not depend on how
// the cores' entries interleave.
import type { CoreWalWriter } from "../src/writer.ts";
import { rng } from "./_helpers.ts";

/** One step of the workload. */
export type Step =
  | { core: number; type: "put"; key: string; value: string }
  | { core: number; type: "delete"; key: string }
  | { core: number; type: "commit"; source: string; offset: number; watermark: number };

/** `n` steps over `cores` cores, from `seed`. */
export function workload(seed: number, n: number, cores: number, keys = 200): Step[] {
  const r = rng(seed);
  const out: Step[] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(r() * keys);
    const core = k % cores;
    const x = r();
    if (x < 0.7) out.push({ core, type: "put", key: `key-${k}`, value: `v-${seed}-${i}` });
    else if (x < 0.9) out.push({ core, type: "delete", key: `key-${k}` });
    else {out.push({
        core,
        type: "commit",
        source: `source-${core}`,
        offset: i,
        watermark: i * 10,
      });}
  }
  return out;
}

/** Appends the steps through the writers. */
export function append(writers: CoreWalWriter[], steps: Step[]): void {
  for (const s of steps) {
    const w = writers[s.core];
    if (s.type === "put") w.appendPut(s.key, s.value);
    else if (s.type === "delete") w.appendDelete(s.key);
    else w.appendCommit({ [s.source]: s.offset }, s.watermark);
  }
}

/** The state the steps produce. */
export function model(steps: Step[]) {
  const state = new Map<string, string>();
  const offsets = new Map<string, number>();
  const watermarks = new Map<string, number>();
  for (const s of steps) {
    if (s.type === "put") state.set(s.key, s.value);
    else if (s.type === "delete") state.delete(s.key);
    else {
      offsets.set(s.source, s.offset);
      watermarks.set(s.source, s.watermark);
    }
  }
  return { state, offsets, watermarks };
}

/** The recovered state as a Map of strings. */
export function asStrings(state: Iterable<[Uint8Array, Uint8Array]>): Map<string, string> {
  const d = new TextDecoder();
  const out = new Map<string, string>();
  for (const [k, v] of state) out.set(d.decode(k), d.decode(v));
  return out;
}
