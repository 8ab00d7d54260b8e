/**
 * The options of `shipToNats`, their defaults and their checks.
 *
 * @module
 */

import { checkEventHandler, type WalEvent } from "../events.ts";
import { checkOptionKeys, OPTION_KEYS } from "../option_keys.ts";

/**
 * Options of {@linkcode shipToNats}.
 *
 * @example
 * ```ts
 * import type { ShipToNatsOptions } from "@percore/wal/ship";
 *
 * const options: ShipToNatsOptions = {
 *   servers: "nats://127.0.0.1:4222",
 *   node: "edge-7",
 *   maxRecordsPerMessage: 1024,
 *   lingerMs: 2,
 * };
 * ```
 */
export interface ShipToNatsOptions {
  /** The NATS server URL(s), as the NATS client takes them. */
  servers: string | string[];
  /**
   * A stable id of this node: letters, digits, `_` and `-`. Subjects are
   * `<subject>.<node>.<core>`; two shippers of one node share a chain of messages per core.
   */
  node: string;
  /** The JetStream stream: created if absent (docs/SHIPPING.md, "The stream"). Default `"WAL"`. */
  stream?: string;
  /** The subject prefix: letters, digits, `_` and `-`, dots between tokens. Default `"wal"`. */
  subject?: string;
  /** Most entries in one message (an atomic batch is never split). Default 1024. */
  maxRecordsPerMessage?: number;
  /** Most bytes in one message (an atomic batch is never split). Default 512 KiB. */
  maxBytesPerMessage?: number;
  /** How long a message waits for more entries once it has one. Default 2 ms. */
  lingerMs?: number;
  /** The longest wait between two retries (they back off from 100 ms). Default 5000. */
  retryMaxMs?: number;
  /** How long one publish waits for its acknowledgement. Default 5000. */
  publishTimeoutMs?: number;
  /** A WAL directory source: milliseconds between looks at its files. Default 20. */
  intervalMs?: number;
  /**
   * More stream configuration (JetStream `StreamConfig` fields: `duplicate_window` in
   * nanoseconds, `max_bytes`, `num_replicas`, ...), used when the shipper creates the stream. An existing stream is not changed, but for
   * adding this node's subjects.
   */
  streamConfig?: Record<string, unknown>;
  /**
   * Passed to the NATS client's `connect` (`@nats-io/transport-node` `NodeConnectionOptions`:
   * `user` and `pass`, `token`, `authenticator`, `tls`, `name`, ...).
   */
  connection?: Record<string, unknown>;
  /**
   * Whether checkpoints of the WAL keep what this shipper has not shipped (default `true`): the
   * shipper registers itself in the WAL directory (`shippers/<stream>-<node>.json`, FORMAT.md
   * section 12) and moves its mark to the latest acknowledgement (at most every 100 ms, and at
   * close); a second shipper of the same
   * stream and node on this WAL is refused ("Locked"). `false` ships without holding anything.
   */
  retain?: boolean;
  /**
   * The unshipped limit, in entries per core (durable, not yet acknowledged by the stream):
   * above it, the core's appends throw "Backpressure" until the shipper caught up (default: no
   * limit). Only with a manager of this process as the source (another process's appends cannot
   * be held from here).
   */
  maxUnshippedRecords?: number;
  /**
   * The unshipped limit, in bytes of the WAL per core: the records (headers, bodies, padding)
   * after the shipped mark's record up to the durable end, across segments (docs/SHIPPING.md,
   * "The unshipped limit"; `status()` reports the same measure). Above it, as with
   * `maxUnshippedRecords`, the core's appends throw "Backpressure" (a manager source only), or,
   * with `onUnshippedLimit: "dropOldest"`, the oldest sealed unshipped segments are given up.
   * Default: no limit. Either limit, or both.
   */
  maxUnshippedBytes?: number;
  /**
   * What the unshipped limits do when reached: `"backpressure"` (default: the core's appends
   * throw "Backpressure" until the shipper caught up; nothing is ever dropped) or `"dropOldest"`
   * (opt-in: the oldest sealed, durable, unshipped segments of the core are given up until it is
   * under the limits, with an `unshippedDropped` event each time and a gap marker in the stream;
   * appends are never refused for it). `"dropOldest"` needs `retain` (the default).
   */
  onUnshippedLimit?: "backpressure" | "dropOldest";
  /**
   * Told of the shipper's `unshippedDropped` events (the `dropOldest` drops, and a range a
   * checkpoint retired while the stream lacked it, with a `reason`: docs/SHIPPING.md). Default:
   * the manager's `onEvent` (a manager source); without either, one line on stderr per drop.
   */
  onEvent?: (event: WalEvent) => void;
  /** Ends the shipper, as `close()` does. */
  signal?: AbortSignal;
}

/** The options with their defaults, checked. */
export type ShipSettings =
  & Required<
    Omit<
      ShipToNatsOptions,
      | "signal"
      | "streamConfig"
      | "connection"
      | "maxUnshippedRecords"
      | "maxUnshippedBytes"
      | "onEvent"
    >
  >
  & {
    maxUnshippedRecords?: number;
    maxUnshippedBytes?: number;
    onEvent?: (event: WalEvent) => void;
    servers: string[];
    streamConfig: Record<string, unknown>;
    connection: Record<string, unknown>;
    signal?: AbortSignal;
  };

// Every option has its key in the table of src/option_keys.ts (this fails type checking if not).
const _KEYS: { readonly [K in keyof Required<ShipToNatsOptions>]: true } =
  OPTION_KEYS.ShipToNatsOptions;

const TOKEN = /^[A-Za-z0-9_-]+$/;

function _int(value: unknown, name: string, min: number, max: number, def: number): number {
  if (value === undefined) return def;
  if (typeof value !== "number") throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function _bool(value: unknown, name: string, def: boolean): boolean {
  if (value === undefined) return def;
  if (typeof value !== "boolean") throw new TypeError(`${name} must be a boolean`);
  return value;
}

/** Checks `options` and fills in the defaults. */
export function shipSettings(options: ShipToNatsOptions): ShipSettings {
  if (options === null || typeof options !== "object") {
    throw new TypeError("shipToNats options must be an object");
  }
  checkOptionKeys(options, "ShipToNatsOptions");
  const servers = typeof options.servers === "string" ? [options.servers] : options.servers;
  if (
    !Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== "string")
  ) {
    throw new TypeError("servers must be a URL string or a non-empty array of them");
  }
  if (typeof options.node !== "string" || !TOKEN.test(options.node)) {
    throw new TypeError(`node must be a non-empty string of letters, digits, "_" and "-"`);
  }
  const subject = options.subject ?? "wal";
  if (typeof subject !== "string" || !subject.split(".").every((t) => TOKEN.test(t))) {
    throw new TypeError(`subject must be tokens of letters, digits, "_" and "-" between dots`);
  }
  const stream = options.stream ?? "WAL";
  if (typeof stream !== "string" || !TOKEN.test(stream)) {
    throw new TypeError(`stream must be a non-empty string of letters, digits, "_" and "-"`);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError("signal must be an AbortSignal");
  }
  return {
    servers,
    node: options.node,
    stream,
    subject,
    maxRecordsPerMessage: _int(
      options.maxRecordsPerMessage,
      "maxRecordsPerMessage",
      1,
      1 << 20,
      1024,
    ),
    maxBytesPerMessage: _int(
      options.maxBytesPerMessage,
      "maxBytesPerMessage",
      64,
      64 << 20,
      512 * 1024,
    ),
    lingerMs: _int(options.lingerMs, "lingerMs", 0, 60_000, 2),
    retryMaxMs: _int(options.retryMaxMs, "retryMaxMs", 1, 3_600_000, 5_000),
    publishTimeoutMs: _int(options.publishTimeoutMs, "publishTimeoutMs", 1, 3_600_000, 5_000),
    intervalMs: _int(options.intervalMs, "intervalMs", 1, 3_600_000, 20),
    streamConfig: options.streamConfig ?? {},
    connection: options.connection ?? {},
    retain: _bool(options.retain, "retain", true),
    maxUnshippedRecords: options.maxUnshippedRecords === undefined
      ? undefined
      : _int(options.maxUnshippedRecords, "maxUnshippedRecords", 1, Number.MAX_SAFE_INTEGER, 0),
    maxUnshippedBytes: options.maxUnshippedBytes === undefined
      ? undefined
      : _int(options.maxUnshippedBytes, "maxUnshippedBytes", 1, Number.MAX_SAFE_INTEGER, 0),
    onUnshippedLimit: _limitMode(options.onUnshippedLimit),
    onEvent: checkEventHandler(options.onEvent),
    signal: options.signal,
  };
}

function _limitMode(value: unknown): "backpressure" | "dropOldest" {
  if (value === undefined) return "backpressure";
  if (value !== "backpressure" && value !== "dropOldest") {
    throw new TypeError(
      `onUnshippedLimit must be "backpressure" or "dropOldest", got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
