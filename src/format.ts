/**
 * The on-disk format, version 3 (versions 1 and 2 are still read): segment headers and
 * records, encoded and decoded in memory. No I/O here; `docs/FORMAT.md` describes every byte.
 *
 * This module gathers the format's four parts so that callers import one place:
 * `format_layout.ts` (sizes, record types, field offsets, integer codecs, record headers and
 * batch markers), `segment_header.ts`, `operation_encode.ts` (validation and record bodies) and
 * `record_decode.ts` (checking and decoding records).
 *
 * @module
 */

export {
  BATCH_MARKER_BYTES,
  batchMarkerClaim,
  DEFAULT_MAX_RECORD_BYTES,
  FORMAT_VERSION,
  getU64,
  MAX_EPOCH,
  MAX_KEY_BYTES,
  MAX_RECORD_BYTES_LIMIT,
  MIN_FORMAT_VERSION,
  PUT_OVERHEAD_BYTES,
  R_CORE,
  R_CRC,
  R_EPOCH,
  R_FLAGS,
  R_LENGTH,
  R_PAD,
  R_SEQUENCE,
  R_TIMESTAMP,
  R_TYPE,
  RECORD_HEADER_BYTES,
  recordCrc,
  recordEpoch,
  recordSequence,
  recordTimestamp,
  RecordType,
  saltState,
  sealBatchMarker,
  SEGMENT_DATA_OFFSET,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  setNsFromUs,
  setU64,
  writeBatchMarker,
  writeRecordHeader,
} from "./format_layout.ts";
export { decodeSegmentHeader, encodeSegmentHeader, type SegmentHeader } from "./segment_header.ts";
export {
  bodyLength,
  normalizeOperation,
  toBytes,
  toKey,
  toOffsets,
  writeBody,
} from "./operation_encode.ts";
export {
  checkRecord,
  decodeBatchRecord,
  type DecodeContext,
  type DecodeCopy,
  decodeRecord,
  type RecordCheck,
} from "./record_decode.ts";
export {
  batchBodyLength,
  type BatchOperationInput,
  normalizeBatch,
  recordSpan,
  writeBatchBody,
} from "./batch_record.ts";
