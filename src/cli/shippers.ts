/**
 * What `wal checkpoints` and `wal stats` show of a WAL's shippers: each registered shipper's
 * shipped sequence per core and the segments it holds from retirement (`ship_retention.ts`).
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import { listCoreSegments } from "../segment_files.ts";
import { listShipperMarks } from "../ship_marks.ts";
import { segmentShipped } from "../ship_retention.ts";
import { readWalMeta } from "../wal_meta.ts";
import { jsonLine } from "./display.ts";

/**
 * Prints a line per registered shipper of `config`'s WAL (nothing without one): per core the
 * last shipped sequence and how many segments hold entries it has not shipped (which checkpoints
 * keep for it). An invalid marks file is shown with why; it holds every segment.
 */
export function printShippers(config: PerCoreWalConfig, o: { json: boolean }): void {
  const shippers = listShipperMarks(config.baseDir, readWalMeta(config.baseDir)?.walId ?? null);
  const segs = Array.from({ length: config.numCores }, (_, c) => listCoreSegments(config, c));
  for (const s of shippers) {
    const unshipped = segs.map((list, c) =>
      s.invalid !== undefined
        ? list.length
        : list.filter((_, i) => !segmentShipped(list, i, s.shipped[c] ?? 0)).length
    );
    if (o.json) {
      console.log(jsonLine({
        kind: "shipper",
        name: s.name,
        shipped: segs.map((_, c) => s.shipped[c] ?? 0),
        unshippedSegments: unshipped,
        updatedAt: s.updatedAt ?? null,
        invalid: s.invalid ?? null,
      }));
      continue;
    }
    if (s.invalid !== undefined) {
      console.log(`shipper ${s.name}: invalid marks file (${s.invalid}): holds every segment`);
      continue;
    }
    const cores = segs.map((_, c) =>
      `core ${c} shipped up to ${s.shipped[c] ?? 0} (holds ${unshipped[c]} segments)`
    );
    console.log(`shipper ${s.name}: ${cores.join("; ")}`);
  }
}
