/**
 * Shipping a per-core WAL to NATS JetStream and reading it back: `@percore/wal/ship`. The core
 * module `@percore/wal` keeps no runtime dependency; this entry point brings the NATS client.
 * The message framing is documented byte by byte in `docs/SHIPPING.md`.
 *
 * @example Encode and decode one message
 * ```ts
 * import { decodeFrame, encodeFrame } from "@percore/wal/ship";
 *
 * const bytes = encodeFrame([{
 *   coreId: 0,
 *   epoch: 1,
 *   sequence: 1,
 *   timestampNs: 1n,
 *   operation: { type: "delete", key: new Uint8Array([1]) },
 * }]);
 * console.log(decodeFrame(bytes).lastSequence); // 1
 * ```
 *
 * @module
 */

export {
  type DecodedFrame,
  decodeFrame,
  encodeFrame,
  encodeGapFrame,
  FRAME_FLAG_GAP,
  FRAME_VERSION,
} from "./src/ship/frame.ts";
export type { BackpressureCause, WalEvent } from "./src/events.ts";
export type { PerCoreWalError, PerCoreWalErrorCode } from "./src/errors.ts";
export type {
  CheckpointOperation,
  CommitOperation,
  DeleteOperation,
  EpochBarrierOperation,
  PerCoreWalEntry,
  PutOperation,
  WalOperation,
} from "./src/types.ts";
export {
  NatsShipper,
  type ShipCoreStatus,
  type ShipManager,
  type ShipSource,
  type ShipStatus,
} from "./src/ship/shipper.ts";
export { shipToNats } from "./src/ship/ship_to_nats.ts";
export type { ShipToNatsOptions } from "./src/ship/options.ts";
export type { CoreShipState } from "./src/ship/core_shipper.ts";
export type { Bytes, WalPosition } from "./src/types.ts";
export type { WatchOptions } from "./src/watch.ts";
export {
  type NatsRecoveredState,
  readNatsStream,
  type ReadNatsStreamOptions,
  recoverFromNats,
  type ShippedEntry,
  type ShippedGap,
} from "./src/ship/read.ts";
export type { RecoveredState } from "./src/recovery_types.ts";
