/**
 * The ingestion server's shipping (`--ship-to`): the shipper's options from the flags, and its
 * status as Prometheus lines for `/metrics`. The shipper itself (`@percore/wal/ship`, with the
 * NATS client) is loaded only when `--ship-to` is given.
 *
 * @module
 */

import type { ShipStatus } from "../ship.ts";

/** The `--ship-*` flags. */
export interface ShipFlags {
  /** `--ship-to`: the NATS server URL(s), comma-separated. */
  to: string;
  /** `--ship-stream`: the JetStream stream (default `WAL`). */
  stream: string;
  /** `--ship-node`: this node's stable id (default `ingest`). */
  node: string;
  /** `--ship-subject`: the subject prefix (default `wal`). */
  subject: string;
  /** `--ship-max-unshipped-records`: passed through as `maxUnshippedRecords`. */
  maxUnshippedRecords?: number;
  /** `--ship-max-unshipped-bytes`: passed through as `maxUnshippedBytes`. */
  maxUnshippedBytes?: number;
}

/** The defaults of the `--ship-*` flags besides `--ship-to`. */
export const SHIP_DEFAULTS = { stream: "WAL", node: "ingest", subject: "wal" } as const;

/** The options of `shipToNats` for these flags. */
export function shipOptions(f: ShipFlags): Record<string, unknown> & {
  servers: string[];
  node: string;
} {
  const o: Record<string, unknown> & { servers: string[]; node: string } = {
    servers: f.to.split(",").map((s) => s.trim()).filter((s) => s !== ""),
    stream: f.stream,
    node: f.node,
    subject: f.subject,
  };
  if (f.maxUnshippedRecords !== undefined) o.maxUnshippedRecords = f.maxUnshippedRecords;
  if (f.maxUnshippedBytes !== undefined) o.maxUnshippedBytes = f.maxUnshippedBytes;
  return o;
}

/**
 * The shipper's status in the Prometheus text format, per core: the last shipped sequence, the
 * unshipped records and bytes, the age of the oldest unshipped entry, the retries, and whether
 * the connection is up.
 */
export function renderShipMetrics(s: ShipStatus): string {
  const out: string[] = [];
  const perCore = (
    name: string,
    type: string,
    help: string,
    value: (c: ShipStatus["cores"][number]) => number,
  ) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const c of s.cores) out.push(`${name}{core="${c.coreId}"} ${value(c)}`);
  };
  perCore(
    "percore_wal_ship_shipped_sequence",
    "gauge",
    "The last sequence of the core that the stream acknowledged (0: none).",
    (c) => c.lastShippedSequence,
  );
  perCore(
    "percore_wal_ship_unshipped_records",
    "gauge",
    "Durable records of the core not yet acknowledged by the stream.",
    (c) => c.unshippedRecords,
  );
  perCore(
    "percore_wal_ship_unshipped_bytes",
    "gauge",
    "Bytes (as framed, an upper bound) of the entries read and not yet acknowledged.",
    (c) => c.unshippedBytes,
  );
  perCore(
    "percore_wal_ship_oldest_unshipped_age_seconds",
    "gauge",
    "Age of the oldest entry read and not acknowledged (0 when none waits).",
    (c) => (c.oldestUnshippedAgeMs ?? 0) / 1000,
  );
  perCore(
    "percore_wal_ship_retries_total",
    "counter",
    "Publishes or look-ups that failed and were retried.",
    (c) => c.retries,
  );
  perCore(
    "percore_wal_ship_connected",
    "gauge",
    "1 when the shipper is connected to the server and the core's loop has not failed, else 0.",
    (c) => s.connection === "connected" && c.state !== "failed" ? 1 : 0,
  );
  return out.join("\n") + "\n";
}
