var __defProp = Object.defineProperty;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[__getOwnPropNames(fn)[0]])(fn = 0)), res;
};
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// src/errors.ts
var PerCoreWalError;
var init_errors = __esm({
  "src/errors.ts"() {
    PerCoreWalError = class extends Error {
      /** What went wrong. */
      code;
      /** The core concerned, if any. */
      coreId;
      /** The segment file concerned, if any. */
      segment;
      /** The byte offset concerned, if any. */
      offset;
      /** The errno name of a failed system call, if any. */
      errno;
      /** The operation that failed, if any. */
      operation;
      /** Creates an error with a code, a message saying what failed and where, and details. */
      constructor(code, message, details = {}) {
        super(message, details.cause === void 0 ? void 0 : {
          cause: details.cause
        });
        this.name = "PerCoreWalError";
        this.code = code;
        this.coreId = details.coreId;
        this.segment = details.segment;
        this.offset = details.offset;
        this.errno = details.errno;
        this.operation = details.operation;
      }
    };
  }
});

// ffi/libc.ts
var libc_exports = {};
__export(libc_exports, {
  allocAligned: () => allocAligned,
  cString: () => cString,
  freeAligned: () => freeAligned,
  lastErrno: () => lastErrno,
  libc: () => libc
});
function libc() {
  if (lib2 !== void 0) return lib2;
  try {
    lib2 = Deno.dlopen("libc.so.6", symbols2).symbols;
  } catch (e) {
    throw new PerCoreWalError("Unsupported", `Cannot load libc.so.6 through FFI (${e instanceof Error ? e.message : e}); run Deno with --allow-ffi on Linux with glibc`, {
      cause: e
    });
  }
  return lib2;
}
function lastErrno() {
  const p = libc().__errno_location();
  return p === null ? 0 : -new Deno.UnsafePointerView(p).getInt32();
}
function cString(s) {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}
function allocAligned(size, alignment = 4096) {
  const out = new BigUint64Array(1);
  const rc = libc().posix_memalign(new Uint8Array(out.buffer), BigInt(alignment), BigInt(size));
  if (rc !== 0) {
    throw new PerCoreWalError("Io", `posix_memalign(${size}) failed: errno ${rc}`, {
      operation: "posix_memalign"
    });
  }
  const pointer = Deno.UnsafePointer.create(out[0]);
  const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, size));
  bytes.fill(0);
  return {
    bytes,
    address: out[0],
    pointer
  };
}
function freeAligned(buf) {
  libc().free(buf.pointer);
}
var symbols2, lib2;
var init_libc = __esm({
  "ffi/libc.ts"() {
    init_errors();
    symbols2 = {
      // int open(const char *path, int flags, mode_t mode)
      open: {
        parameters: [
          "buffer",
          "i32",
          "u32"
        ],
        result: "i32"
      },
      // int close(int fd)
      close: {
        parameters: [
          "i32"
        ],
        result: "i32"
      },
      // int fallocate(int fd, int mode, off_t offset, off_t len)
      fallocate: {
        parameters: [
          "i32",
          "i32",
          "i64",
          "i64"
        ],
        result: "i32"
      },
      // int ftruncate(int fd, off_t length)
      ftruncate: {
        parameters: [
          "i32",
          "i64"
        ],
        result: "i32"
      },
      // int fsync(int fd)
      fsync: {
        parameters: [
          "i32"
        ],
        result: "i32"
      },
      // int fdatasync(int fd)
      fdatasync: {
        parameters: [
          "i32"
        ],
        result: "i32"
      },
      // ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
      pwrite: {
        parameters: [
          "i32",
          "pointer",
          "usize",
          "i64"
        ],
        result: "isize"
      },
      // ssize_t pread(int fd, void *buf, size_t count, off_t offset)
      pread: {
        parameters: [
          "i32",
          "buffer",
          "usize",
          "i64"
        ],
        result: "isize"
      },
      // int posix_memalign(void **memptr, size_t alignment, size_t size)
      posix_memalign: {
        parameters: [
          "buffer",
          "usize",
          "usize"
        ],
        result: "i32"
      },
      // void free(void *ptr)
      free: {
        parameters: [
          "pointer"
        ],
        result: "void"
      },
      // int eventfd(unsigned int initval, int flags)
      eventfd: {
        parameters: [
          "u32",
          "i32"
        ],
        result: "i32"
      },
      // ssize_t read(int fd, void *buf, size_t count), on a worker thread: only for eventfds
      read_blocking: {
        name: "read",
        parameters: [
          "i32",
          "buffer",
          "usize"
        ],
        result: "isize",
        nonblocking: true
      },
      // ssize_t write(int fd, const void *buf, size_t count)
      write: {
        parameters: [
          "i32",
          "buffer",
          "usize"
        ],
        result: "isize"
      },
      // int flock(int fd, int operation)
      flock: {
        parameters: [
          "i32",
          "i32"
        ],
        result: "i32"
      },
      // int sched_setaffinity(pid_t pid, size_t cpusetsize, const cpu_set_t *mask)
      sched_setaffinity: {
        parameters: [
          "i32",
          "usize",
          "buffer"
        ],
        result: "i32"
      },
      // int *__errno_location(void)
      __errno_location: {
        parameters: [],
        result: "pointer"
      }
    };
  }
});

// src/config.ts
init_errors();

// src/numbers.ts
function describeValue(x) {
  if (x === null) return "null";
  if (typeof x === "object") return x.constructor?.name ?? "object";
  return typeof x;
}
function safeIntegerAny(x, what) {
  if (typeof x !== "number") throw _notANumber(x, what);
  if (!Number.isSafeInteger(x)) throw new RangeError(`${what} must be an integer, got ${x}`);
  return x;
}
function safeInteger(x, what) {
  if (typeof x !== "number") throw _notANumber(x, what);
  if (!Number.isSafeInteger(x) || x < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${x}`);
  }
  return x;
}
function signedSafeInteger(x, what) {
  if (typeof x !== "number") throw _notANumber(x, what);
  if (!Number.isSafeInteger(x)) throw new RangeError(`${what} must be a safe integer, got ${x}`);
  return x;
}
function _notANumber(x, what) {
  return new TypeError(typeof x === "bigint" ? `${what} must be a number, got the bigint ${x}n: pass a number (Number(x))` : `${what} must be a number, got ${describeValue(x)}`);
}
var TWO32 = 4294967296;
var MAX_SAFE_HIGH_WORD = 2097151;
function u64IsSafe(view, pos) {
  return view.getUint32(pos + 4, true) <= MAX_SAFE_HIGH_WORD;
}
function i64IsSafe(view, pos) {
  const hi = view.getInt32(pos + 4, true);
  if (hi >= 0) return hi <= MAX_SAFE_HIGH_WORD;
  return hi > -2097152 || hi === -2097152 && view.getUint32(pos, true) >= 1;
}
function getSafeI64(view, pos) {
  return view.getInt32(pos + 4, true) * TWO32 + view.getUint32(pos, true);
}
function setSafeI64(view, pos, n) {
  const lo = (n % TWO32 + TWO32) % TWO32;
  view.setUint32(pos, lo, true);
  view.setInt32(pos + 4, (n - lo) / TWO32, true);
}
function optionalSafeInteger(x, what) {
  return x === void 0 ? void 0 : safeInteger(x, what);
}

// src/crc32c.ts
var POLY = 2197175160;
function _makeTables() {
  const t = new Uint32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? c >>> 1 ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 16; k++) {
      c = t[c & 255] ^ c >>> 8;
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}
var T = _makeTables();
var LITTLE_ENDIAN = new Uint8Array(new Uint32Array([
  1
]).buffer)[0] === 1;
var _wordsOf;
var _words = new Uint32Array(0);
function _wordView(buffer) {
  if (buffer !== _wordsOf) {
    _words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    _wordsOf = buffer;
  }
  return _words;
}
var _native;
var NATIVE_MIN_BYTES = 64;
function setCrc32cAccelerator(native) {
  _native = native;
}
function crc32cUpdate(state, bytes, start = 0, end = bytes.length) {
  if (_native !== void 0 && end - start >= NATIVE_MIN_BYTES) {
    if (start < 0 || end > bytes.length) {
      throw new RangeError(`CRC32C range [${start}, ${end}) is outside ${bytes.length} bytes`);
    }
    return _native(bytes, start, end, state);
  }
  return crc32cUpdateJs(state, bytes, start, end);
}
function _fold16(a, b, d, e) {
  return T[3840 + (a & 255)] ^ T[3584 + (a >>> 8 & 255)] ^ T[3328 + (a >>> 16 & 255)] ^ T[3072 + (a >>> 24)] ^ T[2816 + (b & 255)] ^ T[2560 + (b >>> 8 & 255)] ^ T[2304 + (b >>> 16 & 255)] ^ T[2048 + (b >>> 24)] ^ T[1792 + (d & 255)] ^ T[1536 + (d >>> 8 & 255)] ^ T[1280 + (d >>> 16 & 255)] ^ T[1024 + (d >>> 24)] ^ T[768 + (e & 255)] ^ T[512 + (e >>> 8 & 255)] ^ T[256 + (e >>> 16 & 255)] ^ T[e >>> 24];
}
function crc32cUpdateJs(state, bytes, start = 0, end = bytes.length) {
  let c = state;
  let i = start;
  const abs = bytes.byteOffset + start;
  if (LITTLE_ENDIAN && (abs & 3) === 0 && end - start >= 32 && !bytes.buffer.resizable && !bytes.buffer.growable) {
    const w = _wordView(bytes.buffer);
    let x = abs >>> 2;
    const x16 = bytes.byteOffset + end - 16 >>> 2;
    while (x <= x16) {
      const a = c ^ w[x];
      const b = w[x + 1];
      const d = w[x + 2];
      const e = w[x + 3];
      c = _fold16(a, b, d, e);
      x += 4;
    }
    i = (x << 2) - bytes.byteOffset;
  }
  const end16 = end - 16;
  while (i <= end16) {
    const a = c ^ (bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24);
    const b = bytes[i + 4] | bytes[i + 5] << 8 | bytes[i + 6] << 16 | bytes[i + 7] << 24;
    const d = bytes[i + 8] | bytes[i + 9] << 8 | bytes[i + 10] << 16 | bytes[i + 11] << 24;
    const e = bytes[i + 12] | bytes[i + 13] << 8 | bytes[i + 14] << 16 | bytes[i + 15] << 24;
    c = _fold16(a, b, d, e);
    i += 16;
  }
  const end8 = end - 8;
  while (i <= end8) {
    const a = c ^ (bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24);
    c = T[1792 + (a & 255)] ^ T[1536 + (a >>> 8 & 255)] ^ T[1280 + (a >>> 16 & 255)] ^ T[1024 + (a >>> 24)] ^ T[768 + bytes[i + 4]] ^ T[512 + bytes[i + 5]] ^ T[256 + bytes[i + 6]] ^ T[bytes[i + 7]];
    i += 8;
  }
  while (i < end) c = T[(c ^ bytes[i++]) & 255] ^ c >>> 8;
  return c;
}

// src/format_layout.ts
var FORMAT_VERSION = 3;
var MIN_FORMAT_VERSION = 1;
var SEGMENT_MAGIC = new TextEncoder().encode("PCWALSEG");
var SEGMENT_HEADER_BYTES = 64;
var SEGMENT_DATA_OFFSET = 4096;
var RECORD_HEADER_BYTES = 38;
var PUT_OVERHEAD_BYTES = 40;
var MAX_KEY_BYTES = 65535;
var DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
var MAX_RECORD_BYTES_LIMIT = 1024 * 1024 * 1024;
var RecordType = {
  put: 1,
  delete: 2,
  checkpoint: 3,
  commit: 4,
  epochBarrier: 5,
  /**
   * Version 2: the first record of every batch. It takes no sequence of its own (its sequence
   * field is that of the next record) and its body is the u64 sequence through which the core
   * had acknowledged records when the batch was submitted. Readers skip it.
   */
  batch: 6,
  /**
   * Version 3: an atomic batch, several operations in one record (`appendBatch`). Its sequence
   * field is the first of the `count` consecutive sequences it takes; readers expand it into
   * `count` entries (`src/batch_record.ts`).
   */
  atomicBatch: 7
};
var BATCH_MARKER_BYTES = RECORD_HEADER_BYTES + 8;
var R_CRC = 0;
var R_LENGTH = 4;
var R_EPOCH = 8;
var R_SEQUENCE = 16;
var R_TIMESTAMP = 24;
var R_TYPE = 32;
var R_FLAGS = 33;
var R_CORE = 34;
var R_PAD = 36;
var TWO322 = 4294967296;
var MAX_EPOCH = Number.MAX_SAFE_INTEGER;
function setU64(view, pos, n) {
  const lo = n % TWO322;
  view.setUint32(pos, lo, true);
  view.setUint32(pos + 4, (n - lo) / TWO322, true);
}
function setNsFromUs(view, pos, us) {
  const uh = Math.floor(us / TWO322);
  const ul = us - uh * TWO322;
  const l = ul * 1e3;
  const lo = l % TWO322;
  view.setUint32(pos, lo, true);
  view.setUint32(pos + 4, uh * 1e3 + (l - lo) / TWO322, true);
}
function saltState(salt) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, salt, true);
  return crc32cUpdate(4294967295, b);
}
function recordCrc(bytes, pos, length, salt) {
  return ~crc32cUpdate(salt, bytes, pos + R_LENGTH, pos + length) >>> 0;
}
function writeRecordHeader(view, pos, length, type, coreId, epoch, sequence, timestampUs, padLength) {
  view.setUint32(pos + R_LENGTH, length, true);
  setU64(view, pos + R_EPOCH, epoch);
  setU64(view, pos + R_SEQUENCE, sequence);
  setNsFromUs(view, pos + R_TIMESTAMP, timestampUs);
  view.setUint8(pos + R_TYPE, type);
  view.setUint8(pos + R_FLAGS, 0);
  view.setUint16(pos + R_CORE, coreId, true);
  view.setUint16(pos + R_PAD, padLength, true);
}
function batchMarkerClaim(view, pos) {
  return getU64(view, pos + RECORD_HEADER_BYTES);
}
function writeBatchMarker(view, pos, coreId, epoch, sequence, timestampUs) {
  writeRecordHeader(view, pos, BATCH_MARKER_BYTES, RecordType.batch, coreId, epoch, sequence, timestampUs, 0);
}
function sealBatchMarker(bytes, view, pos, acknowledgedSequence, salt) {
  setU64(view, pos + RECORD_HEADER_BYTES, acknowledgedSequence);
  view.setUint32(pos + R_CRC, recordCrc(bytes, pos, BATCH_MARKER_BYTES, salt), true);
}
function getU64(view, pos) {
  return view.getUint32(pos, true) + view.getUint32(pos + 4, true) * TWO322;
}
function recordSequence(view, pos) {
  return view.getUint32(pos + R_SEQUENCE, true) + view.getUint32(pos + R_SEQUENCE + 4, true) * TWO322;
}
function recordEpoch(view, pos) {
  return getU64(view, pos + R_EPOCH);
}
function recordTimestamp(view, pos) {
  return view.getInt32(pos + R_TIMESTAMP + 4, true) * TWO322 + view.getUint32(pos + R_TIMESTAMP, true);
}

// src/segment_header.ts
init_errors();
function encodeSegmentHeader(h) {
  const b = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = new DataView(b.buffer);
  b.set(SEGMENT_MAGIC, 0);
  v.setUint16(8, FORMAT_VERSION, true);
  v.setUint16(10, SEGMENT_HEADER_BYTES, true);
  v.setUint32(12, h.coreId, true);
  setU64(v, 16, h.segmentIndex);
  setU64(v, 24, h.firstSequence);
  setU64(v, 32, h.epoch);
  v.setBigInt64(40, h.createdAtNs, true);
  v.setUint32(48, h.salt, true);
  v.setUint32(52, SEGMENT_DATA_OFFSET, true);
  v.setUint32(56, 0, true);
  v.setUint32(60, ~crc32cUpdate(4294967295, b, 0, 60) >>> 0, true);
  return b;
}
function decodeSegmentHeader(bytes, path = "segment") {
  const fail = (code, why) => new PerCoreWalError(code, `Cannot open segment "${path}": ${why}`, {
    segment: path,
    offset: 0
  });
  if (bytes.length < SEGMENT_HEADER_BYTES) throw fail("Corrupted", "file shorter than its header");
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) throw fail("Corrupted", "not a segment (bad magic)");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  const crc = ~crc32cUpdate(4294967295, bytes, 0, 60) >>> 0;
  if (crc !== v.getUint32(60, true)) throw fail("ChecksumMismatch", "header checksum mismatch");
  const version = v.getUint16(8, true);
  if (version < MIN_FORMAT_VERSION || version > FORMAT_VERSION) {
    throw fail("Unsupported", `format version ${version} (this module reads ${MIN_FORMAT_VERSION} to ${FORMAT_VERSION})`);
  }
  const dataOffset = v.getUint32(52, true);
  if (v.getUint16(10, true) !== SEGMENT_HEADER_BYTES || dataOffset !== SEGMENT_DATA_OFFSET) {
    throw fail("Corrupted", "unexpected header or data offset");
  }
  const flags = v.getUint32(56, true);
  if (flags !== 0) throw fail("Unsupported", `unknown header flags ${flags}`);
  if (!u64IsSafe(v, 16)) throw fail("Corrupted", "segment index above 2^53 - 1");
  if (!u64IsSafe(v, 24)) throw fail("Corrupted", "first sequence above 2^53 - 1");
  if (!u64IsSafe(v, 32)) throw fail("Corrupted", "epoch above 2^53 - 1");
  const salt = v.getUint32(48, true);
  if (salt === 0) throw fail("Corrupted", "zero salt");
  return {
    version,
    coreId: v.getUint32(12, true),
    segmentIndex: getU64(v, 16),
    firstSequence: getU64(v, 24),
    epoch: getU64(v, 32),
    createdAtNs: v.getBigInt64(40, true),
    salt,
    dataOffset
  };
}

// src/operation_encode.ts
var encoder = new TextEncoder();
function toBytes(x, what) {
  if (x instanceof Uint8Array) {
    if (!ArrayBuffer.isView(x)) {
      throw new TypeError(`${what} must be a Uint8Array or a string, got a Proxy or a forgery`);
    }
    const plain = x.constructor === Uint8Array ? x : _plainView(x);
    if (plain.length === 0 && _isDetached(plain)) {
      throw new TypeError(`${what} is a Uint8Array over a detached ArrayBuffer`);
    }
    return plain;
  }
  if (typeof x === "string") {
    if (!x.isWellFormed()) {
      throw new TypeError(`${what} is not a well-formed string (lone surrogate)`);
    }
    return encoder.encode(x);
  }
  throw new TypeError(`${what} must be a Uint8Array or a string, got ${describeValue(x)}`);
}
var _typedArray = Object.getPrototypeOf(Uint8Array.prototype);
var _bufferOf = Object.getOwnPropertyDescriptor(_typedArray, "buffer").get;
var _offsetOf = Object.getOwnPropertyDescriptor(_typedArray, "byteOffset").get;
var _lengthOf = Object.getOwnPropertyDescriptor(_typedArray, "byteLength").get;
function _plainView(x) {
  return new Uint8Array(_bufferOf.call(x), _offsetOf.call(x), _lengthOf.call(x));
}
function _isDetached(x) {
  const buffer = _bufferOf.call(x);
  return buffer instanceof ArrayBuffer && buffer.detached;
}
function toKey(key) {
  const k = toBytes(key, "key");
  if (k.length > MAX_KEY_BYTES) {
    throw new RangeError(`key is ${k.length} bytes; keys are at most ${MAX_KEY_BYTES} bytes`);
  }
  return k;
}
function toOffsets(offsets) {
  if (offsets === null || typeof offsets !== "object") {
    throw new TypeError(`offsets must be a Map or an object, got ${describeValue(offsets)}`);
  }
  const entries = offsets instanceof Map ? offsets.entries() : Object.entries(offsets);
  const out = /* @__PURE__ */ new Map();
  for (const [name, off] of entries) {
    if (typeof name !== "string") throw new TypeError("offset source names must be strings");
    if (encoder.encode(name).length > MAX_KEY_BYTES) {
      throw new RangeError(`source name "${name.slice(0, 40)}..." is longer than 65535 bytes`);
    }
    out.set(name, safeInteger(off, `offset of source "${name}"`));
  }
  if (out.size > 65535) throw new RangeError("a commit holds at most 65535 sources");
  return out;
}
function normalizeOperation(op, currentEpoch) {
  if (op === null || typeof op !== "object") {
    throw new TypeError(`operation must be an object, got ${describeValue(op)}`);
  }
  switch (op.type) {
    case "put":
      return {
        type: "put",
        key: toKey(op.key),
        value: toBytes(op.value, "value")
      };
    case "delete":
      return {
        type: "delete",
        key: toKey(op.key)
      };
    case "checkpoint":
      return {
        type: "checkpoint",
        id: safeInteger(op.id, "checkpoint id")
      };
    case "commit": {
      const c = {
        type: "commit",
        offsets: toOffsets(op.offsets)
      };
      if (op.watermark !== void 0) c.watermark = signedSafeInteger(op.watermark, "watermark");
      return c;
    }
    case "epochBarrier": {
      const epoch = op.epoch === void 0 ? currentEpoch : safeInteger(op.epoch, "barrier epoch");
      if (epoch > currentEpoch && epoch === MAX_EPOCH) {
        throw new RangeError(`barrier epoch ${epoch} is above 2^53 - 2: a checkpoint could not begin the next epoch`);
      }
      return {
        type: "epochBarrier",
        epoch
      };
    }
    default:
      throw new TypeError(`unknown operation type ${JSON.stringify(op.type)}`);
  }
}
function bodyLength(op) {
  switch (op.type) {
    case "put":
      return 2 + op.key.length + op.value.length;
    case "delete":
      return op.key.length;
    case "checkpoint":
    case "epochBarrier":
      return 8;
    case "commit": {
      let n = 2 + 1 + (op.watermark === void 0 ? 0 : 8);
      for (const name of op.offsets.keys()) n += 2 + encoder.encode(name).length + 8;
      return n;
    }
  }
}
function writeBody(op, bytes, view, pos) {
  switch (op.type) {
    case "put":
      view.setUint16(pos, op.key.length, true);
      bytes.set(op.key, pos + 2);
      bytes.set(op.value, pos + 2 + op.key.length);
      return;
    case "delete":
      bytes.set(op.key, pos);
      return;
    case "checkpoint":
      setU64(view, pos, op.id);
      return;
    case "epochBarrier":
      setU64(view, pos, op.epoch);
      return;
    case "commit": {
      view.setUint16(pos, op.offsets.size, true);
      let p = pos + 2;
      for (const [name, off] of op.offsets) {
        const nb = encoder.encode(name);
        view.setUint16(p, nb.length, true);
        bytes.set(nb, p + 2);
        setU64(view, p + 2 + nb.length, off);
        p += 2 + nb.length + 8;
      }
      if (op.watermark === void 0) {
        bytes[p] = 0;
      } else {
        bytes[p] = 1;
        setSafeI64(view, p + 1, op.watermark);
      }
      return;
    }
  }
}

// src/batch_record.ts
var COUNT_BYTES = 4;
var OP_HEADER_BYTES = 5;
function normalizeBatch(ops) {
  return _validated(ops, (n) => {
    if (n.type === "put") return {
      type: "put",
      key: n.key.slice(),
      value: n.value.slice()
    };
    if (n.type === "delete") return {
      type: "delete",
      key: n.key.slice()
    };
    return n;
  });
}
function _validated(ops, keep) {
  if (ops === null || typeof ops !== "object" || typeof ops[Symbol.iterator] !== "function") {
    throw new TypeError("a batch must be an array (or an iterable) of operations");
  }
  const out = [];
  for (const op of ops) {
    const type = op !== null && typeof op === "object" ? op.type : op;
    if (type === "checkpoint" || type === "epochBarrier" || type === "batch") {
      throw new TypeError(`operation ${out.length} of the batch is a ${type} operation: a batch holds puts, deletes and commits`);
    }
    out.push(keep(normalizeOperation(op, 0)));
  }
  if (out.length === 0) throw new RangeError("a batch needs at least one operation");
  return out;
}
function batchBodyLength(ops) {
  let n = COUNT_BYTES;
  for (const op of ops) n += OP_HEADER_BYTES + bodyLength(op);
  return n;
}
function writeBatchBody(ops, bytes, view, pos) {
  view.setUint32(pos, ops.length, true);
  let p = pos + COUNT_BYTES;
  for (const op of ops) {
    const n = bodyLength(op);
    view.setUint8(p, RecordType[op.type]);
    view.setUint32(p + 1, n, true);
    writeBody(op, bytes, view, p + OP_HEADER_BYTES);
    p += OP_HEADER_BYTES + n;
  }
}
function recordSpan(bytes, view, pos, type) {
  return type === RecordType.atomicBatch && bytes.length >= pos + RECORD_HEADER_BYTES + 4 ? view.getUint32(pos + RECORD_HEADER_BYTES, true) : 1;
}
function checkBatchBody(bytes, view, b, end, checkCommit) {
  if (end - b < COUNT_BYTES) return "batch body too short";
  const count = view.getUint32(b, true);
  if (count === 0) return "empty batch";
  let p = b + COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    if (end - p < OP_HEADER_BYTES) return `batch operation ${i} runs past the body`;
    const type = bytes[p];
    const n = view.getUint32(p + 1, true);
    const s = p + OP_HEADER_BYTES;
    if (n > end - s) return `batch operation ${i} runs past the body`;
    switch (type) {
      case RecordType.put:
        if (n < 2 || 2 + view.getUint16(s, true) > n) {
          return `batch operation ${i}: put key longer than its body`;
        }
        break;
      case RecordType.delete:
        if (n > 65535) return `batch operation ${i}: delete key too long`;
        break;
      case RecordType.commit: {
        const reason = checkCommit(bytes, view, s, s + n);
        if (reason !== void 0) return `batch operation ${i}: ${reason}`;
        break;
      }
      default:
        return `batch operation ${i} has type ${type}, not put, delete or commit`;
    }
    p = s + n;
  }
  return p === end ? void 0 : "batch body length mismatch";
}
function decodeBatchOperations(bytes, view, pos, decodeCommit) {
  const b = pos + RECORD_HEADER_BYTES;
  const count = view.getUint32(b, true);
  const ops = new Array(count);
  let p = b + COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    const type = bytes[p];
    const n = view.getUint32(p + 1, true);
    const s = p + OP_HEADER_BYTES;
    if (type === RecordType.put) {
      const k = view.getUint16(s, true);
      ops[i] = {
        type: "put",
        key: bytes.slice(s + 2, s + 2 + k),
        value: bytes.slice(s + 2 + k, s + n)
      };
    } else if (type === RecordType.delete) {
      ops[i] = {
        type: "delete",
        key: bytes.slice(s, s + n)
      };
    } else {
      ops[i] = decodeCommit(bytes, view, s);
    }
    p = s + n;
  }
  return ops;
}

// src/record_decode.ts
var decoder = new TextDecoder();
var ZERO = {
  status: "zero"
};
function checkRecord(bytes, view, pos, end, ctx) {
  if (end - pos < 8) {
    for (let i = pos; i < end; i++) if (bytes[i] !== 0) return {
      status: "incomplete",
      length: 8
    };
    return end === pos ? {
      status: "incomplete",
      length: 8
    } : ZERO;
  }
  const length = view.getUint32(pos + R_LENGTH, true);
  if (length === 0 && view.getUint32(pos + R_CRC, true) === 0) return ZERO;
  if (length < RECORD_HEADER_BYTES || length > ctx.maxRecordBytes + MAX_KEY_BYTES) {
    return {
      status: "bad",
      code: "Corrupted",
      reason: `record length ${length} out of range`
    };
  }
  if (length > end - pos) return {
    status: "incomplete",
    length
  };
  if (recordCrc(bytes, pos, length, ctx.salt) !== view.getUint32(pos + R_CRC, true)) {
    return {
      status: "bad",
      code: "ChecksumMismatch",
      reason: "checksum mismatch"
    };
  }
  const reason = _checkFields(bytes, view, pos, length, ctx) ?? (bytes[pos + R_TYPE] === RecordType.batch ? _checkMarker(view, pos, ctx) : void 0);
  return reason === void 0 ? {
    status: "ok",
    length
  } : {
    status: "bad",
    code: "Corrupted",
    reason
  };
}
function _checkFields(bytes, view, pos, length, ctx) {
  const type = bytes[pos + R_TYPE];
  if (bytes[pos + R_FLAGS] !== 0) return `unknown record flags ${bytes[pos + R_FLAGS]}`;
  const core = view.getUint16(pos + R_CORE, true);
  if (core !== ctx.coreId) return `record of core ${core} in a segment of core ${ctx.coreId}`;
  if (!u64IsSafe(view, pos + R_SEQUENCE)) return "sequence above 2^53 - 1";
  if (!u64IsSafe(view, pos + R_EPOCH)) return "epoch above 2^53 - 1";
  const pad = view.getUint16(pos + R_PAD, true);
  const bodyEnd = pos + length - pad;
  if (bodyEnd < pos + RECORD_HEADER_BYTES) return `padding ${pad} longer than the record`;
  if (length - pad > ctx.maxRecordBytes) return `record of ${length - pad} bytes above the limit`;
  for (let i = bodyEnd; i < pos + length; i++) if (bytes[i] !== 0) return "non-zero padding";
  const body = bodyEnd - pos - RECORD_HEADER_BYTES;
  const b = pos + RECORD_HEADER_BYTES;
  switch (type) {
    case RecordType.put:
      if (body < 2 || 2 + view.getUint16(b, true) > body) return "put key longer than the body";
      return void 0;
    case RecordType.delete:
      return body > MAX_KEY_BYTES ? "delete key too long" : void 0;
    case RecordType.checkpoint:
    case RecordType.epochBarrier:
    case RecordType.batch:
      if (body !== 8) return `body of ${body} bytes, expected 8`;
      return u64IsSafe(view, b) ? void 0 : "body value above 2^53 - 1";
    case RecordType.commit:
      return _checkCommit(bytes, view, b, bodyEnd);
    case RecordType.atomicBatch:
      if ((ctx.version ?? 1) < 3) return `atomic batch in a version ${ctx.version ?? 1} segment`;
      return checkBatchBody(bytes, view, b, bodyEnd, _checkCommit);
    default:
      return `unknown record type ${type}`;
  }
}
function _checkMarker(view, pos, ctx) {
  if ((ctx.version ?? 1) < 2) return "batch marker in a version 1 segment";
  return batchMarkerClaim(view, pos) < recordSequence(view, pos) ? void 0 : "batch marker claims its own records were acknowledged";
}
function _checkCommit(bytes, view, p, end) {
  if (end - p < 3) return "commit body too short";
  const n = view.getUint16(p, true);
  p += 2;
  for (let i = 0; i < n; i++) {
    if (end - p < 2) return "commit body too short";
    const len = view.getUint16(p, true);
    p += 2 + len + 8;
    if (p > end) return "commit body too short";
    if (!u64IsSafe(view, p - 8)) return "commit offset above 2^53 - 1";
  }
  if (p >= end) return "commit body too short";
  const flag = bytes[p];
  if (flag > 1) return "bad watermark flag";
  if (p + 1 + flag * 8 !== end) return "commit body length mismatch";
  return flag === 1 && !i64IsSafe(view, p + 1) ? "watermark beyond 2^53 - 1" : void 0;
}
var ARENA = 64 * 1024;
var _arena = new Uint8Array(ARENA);
var _arenaPos = 0;
function _copy(bytes, start, end) {
  const n = end - start;
  if (n > 4096) return bytes.slice(start, end);
  const at = _arenaTake(n);
  _arena.set(bytes.subarray(start, end), at);
  return new Uint8Array(_arena.buffer, at, n);
}
function _arenaTake(n) {
  if (_arenaPos + n > ARENA) {
    _arena = new Uint8Array(ARENA);
    _arenaPos = 0;
  }
  const at = _arenaPos;
  _arenaPos += n + 7 & ~7;
  return at;
}
function decodeRecord(bytes, view, pos, epoch, copy, timestampNs) {
  const length = view.getUint32(pos + R_LENGTH, true);
  const bodyEnd = pos + length - view.getUint16(pos + R_PAD, true);
  const b = pos + RECORD_HEADER_BYTES;
  let operation;
  switch (bytes[pos + R_TYPE]) {
    case RecordType.put: {
      const k = view.getUint16(b, true);
      const n = bodyEnd - b - 2;
      if (copy !== void 0 && pos >= copy.from && bodyEnd <= copy.to) {
        const at2 = b + 2 - copy.from;
        operation = {
          type: "put",
          key: new Uint8Array(copy.buffer, at2, k),
          value: new Uint8Array(copy.buffer, at2 + k, n - k)
        };
        break;
      }
      if (n > 4096) {
        operation = {
          type: "put",
          key: _copy(bytes, b + 2, b + 2 + k),
          value: _copy(bytes, b + 2 + k, bodyEnd)
        };
        break;
      }
      const at = _arenaTake(n);
      const arena = _arena;
      arena.set(bytes.subarray(b + 2, bodyEnd), at);
      operation = {
        type: "put",
        key: new Uint8Array(arena.buffer, at, k),
        value: new Uint8Array(arena.buffer, at + k, n - k)
      };
      break;
    }
    case RecordType.delete:
      operation = {
        type: "delete",
        key: copy !== void 0 && pos >= copy.from && bodyEnd <= copy.to ? new Uint8Array(copy.buffer, b - copy.from, bodyEnd - b) : _copy(bytes, b, bodyEnd)
      };
      break;
    case RecordType.checkpoint:
      operation = {
        type: "checkpoint",
        id: getU64(view, b)
      };
      break;
    case RecordType.epochBarrier:
      operation = {
        type: "epochBarrier",
        epoch: getU64(view, b)
      };
      break;
    default:
      operation = _decodeCommit(bytes, view, b);
  }
  return {
    coreId: view.getUint16(pos + R_CORE, true),
    epoch: epoch ?? getU64(view, pos + R_EPOCH),
    sequence: recordSequence(view, pos),
    timestampNs: timestampNs ?? view.getBigInt64(pos + R_TIMESTAMP, true),
    operation
  };
}
function decodeBatchRecord(bytes, view, pos) {
  return decodeBatchOperations(bytes, view, pos, _decodeCommit);
}
function _decodeCommit(bytes, view, bodyStart) {
  const offsets = /* @__PURE__ */ new Map();
  const n = view.getUint16(bodyStart, true);
  let p = bodyStart + 2;
  for (let i = 0; i < n; i++) {
    const len = view.getUint16(p, true);
    offsets.set(decoder.decode(bytes.subarray(p + 2, p + 2 + len)), getU64(view, p + 2 + len));
    p += 2 + len + 8;
  }
  const commit = {
    type: "commit",
    offsets
  };
  if (bytes[p] === 1) commit.watermark = getSafeI64(view, p + 1);
  return commit;
}

// src/option_keys.ts
var WAL_OPTIONS = {
  segmentPattern: true,
  segmentSizeBytes: true,
  segmentFill: true,
  backend: true,
  writeMode: true,
  ringEntries: true,
  maxBatchBytes: true,
  maxInFlightBatches: true,
  syncDelayMs: true,
  maxRecordBytes: true,
  maxPendingBytes: true,
  fileMode: true,
  allowSymlinks: true,
  sharedBufferBytes: true,
  pinWorkers: true
};
var MANAGER_OPEN_OPTIONS = {
  checkpointDir: true,
  faults: true,
  backendModule: true,
  idleWaitMs: true,
  onEvent: true
};
var OPTION_KEYS = {
  PerCoreWalOptions: WAL_OPTIONS,
  ManagerOpenOptions: MANAGER_OPEN_OPTIONS,
  WalOpenOptions: {
    ...WAL_OPTIONS,
    ...MANAGER_OPEN_OPTIONS,
    cores: true
  },
  CoreLogOptions: {
    backend: true,
    minEpoch: true,
    onDurable: true,
    onFail: true,
    onEvent: true,
    completionSpinStop: true,
    lazyCompletionWait: true
  },
  RecoveryOptions: {
    checkpointDir: true,
    mode: true,
    readOnly: true,
    onEntry: true,
    signal: true
  },
  MergeOptions: {
    fromEpoch: true,
    toEpoch: true,
    // Internal: the manager's durable ends.
    ends: true
  },
  ReaderOptions: {
    maxRecordBytes: true,
    isLastSegment: true,
    limitOffset: true,
    startOffset: true,
    startSequence: true,
    laterSegments: true,
    expectedFirstSequence: true,
    readAhead: true,
    liveEnd: true
  },
  CheckpointCoordinatorOptions: {
    checkpointDir: true,
    retain: true,
    maxMemoryBytes: true
  },
  CheckpointRunOptions: {
    state: true,
    onStep: true,
    signal: true
  },
  WatchOptions: {
    coreId: true,
    from: true,
    signal: true
  },
  WatchWalOptions: {
    coreId: true,
    from: true,
    signal: true,
    intervalMs: true
  },
  WriterHandleOptions: {
    bufferBytes: true
  },
  WaitOptions: {
    signal: true
  },
  AppendWaitOptions: {
    timeoutMs: true,
    signal: true
  },
  ShipMarksOptions: {
    onEvent: true
  },
  // Checked against its interface in src/ship/options.ts (kept from here: the core module does
  // not load the NATS client's types).
  ShipToNatsOptions: {
    servers: true,
    node: true,
    stream: true,
    subject: true,
    maxRecordsPerMessage: true,
    maxBytesPerMessage: true,
    lingerMs: true,
    retryMaxMs: true,
    publishTimeoutMs: true,
    intervalMs: true,
    streamConfig: true,
    connection: true,
    retain: true,
    maxUnshippedRecords: true,
    maxUnshippedBytes: true,
    onUnshippedLimit: true,
    onEvent: true,
    signal: true
  },
  // Checked against its interface in src/ship/read.ts.
  ReadNatsStreamOptions: {
    servers: true,
    node: true,
    stream: true,
    subject: true,
    allowMissingStart: true,
    onGap: true,
    connection: true,
    signal: true
  }
};
function checkOptionKeys(options, what) {
  if (options === void 0) return;
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${what} must be an object, got ${options === null ? "null" : typeof options}`);
  }
  const known = OPTION_KEYS[what];
  for (const key in options) {
    if (Object.hasOwn(known, key)) continue;
    const near = nearestKey(key, Object.keys(known));
    throw new TypeError(`unknown option ${key} in ${what}` + (near === void 0 ? "" : `; did you mean ${near}?`));
  }
}
function nearestKey(key, candidates) {
  const k = key.toLowerCase();
  let best;
  let bestScore = Infinity;
  for (const c of candidates) {
    const l = c.toLowerCase();
    const prefix = l.startsWith(k) || k.startsWith(l);
    const d = prefix ? Math.abs(l.length - k.length) : _distance(k, l);
    if (d > Math.ceil(Math.max(k.length, l.length) / 2)) continue;
    const score = prefix ? d / (d + 1) : d;
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}
function _distance(a, b) {
  let prev = Array.from({
    length: b.length + 1
  }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [
      i
    ];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

// src/path_arg.ts
function toPath(path, name = "path") {
  if (typeof path === "string") {
    return /^file:/i.test(path) ? toPath(_parse(path, name), name) : path;
  }
  if (!(path instanceof URL)) {
    throw new TypeError(`${name} must be a string or a file: URL, got ${_kind(path)}`);
  }
  if (path.protocol !== "file:") {
    throw new TypeError(`${name} must be a file: URL, got a ${path.protocol} URL (${path.href})`);
  }
  if (path.hostname !== "" && path.hostname !== "localhost") {
    throw new TypeError(`${name} must be a local file: URL, got host "${path.hostname}"`);
  }
  if (/%2f/i.test(path.pathname)) {
    throw new TypeError(`${name} must not encode "/" as %2F: ${path.href}`);
  }
  const decoded = decodeURIComponent(path.pathname.replace(/%(?![0-9A-Fa-f]{2})/g, "%25"));
  if (decoded.includes("\0")) throw new TypeError(`${name} must not contain a NUL byte`);
  return decoded;
}
function _parse(text, name) {
  try {
    return new URL(text);
  } catch {
    throw new TypeError(`${name} "${text}" starts like a file: URL but is not one`);
  }
}
function _kind(v) {
  return v === null ? "null" : typeof v === "object" ? v.constructor?.name ?? "object" : typeof v;
}

// src/config.ts
var DEFAULT_SEGMENT_PATTERN = "wal-{core_id}-{segment}.log";
var MiB = 1024 * 1024;
var PerCoreWalConfig = class {
  /** The directory that holds every core's segments. */
  baseDir;
  /** How many cores (1 to 1024). */
  numCores;
  /** The options, with defaults filled in. */
  options;
  #pattern;
  /**
   * Validates and stores a configuration. `baseDir` is a path or a `file:` URL. Throws
   * `TypeError` or `RangeError` for a bad value, and `TypeError` for an unknown option key.
   */
  constructor(baseDir, numCores, options = {}) {
    baseDir = toPath(baseDir, "baseDir");
    checkBaseDir(baseDir);
    safeIntegerAny(numCores, "numCores");
    if (numCores < 1 || numCores > 1024) {
      throw new RangeError(`numCores must be between 1 and 1024, got ${numCores}`);
    }
    this.baseDir = baseDir.length > 1 ? baseDir.replace(/\/+$/, "") : baseDir;
    this.numCores = numCores;
    this.options = Object.freeze(resolveOptions(options));
    this.#pattern = _patternRegExp(this.options.segmentPattern);
  }
  /** The path of segment `segment` of core `coreId`. */
  segmentPath(coreId, segment) {
    return `${this.baseDir}/${formatSegmentName(this.options.segmentPattern, coreId, segment)}`;
  }
  /**
   * Parses a file name made by {@linkcode segmentPath}: its core and segment, or undefined. Any
   * core id is parsed, also one at or beyond {@linkcode numCores}.
   */
  parseSegmentName(name) {
    return _parseWith(this.#pattern, name);
  }
};
function checkBaseDir(baseDir) {
  if (typeof baseDir !== "string" || baseDir.length === 0) {
    throw new TypeError("baseDir must be a non-empty string");
  }
}
function _parseWith(pattern, name) {
  const m = pattern.exec(name);
  if (m === null) return void 0;
  const coreId = Number(m.groups.core);
  const segment = Number(m.groups.segment);
  if (!Number.isSafeInteger(coreId) || !Number.isSafeInteger(segment)) return void 0;
  return {
    coreId,
    segment
  };
}
function formatSegmentName(pattern, coreId, segment) {
  return pattern.replace("{core_id}", String(coreId)).replace("{segment}", String(segment).padStart(6, "0"));
}
function _patternRegExp(pattern) {
  const esc = (s) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
  const [a, rest] = _splitOnce(pattern, "{core_id}");
  const src = rest.includes("{segment}") ? (() => {
    const [b, c] = _splitOnce(rest, "{segment}");
    return `${esc(a)}(?<core>\\d+)${esc(b)}(?<segment>\\d+)${esc(c)}`;
  })() : (() => {
    const [b, c] = _splitOnce(a, "{segment}");
    return `${esc(b)}(?<segment>\\d+)${esc(c)}(?<core>\\d+)${esc(rest)}`;
  })();
  return new RegExp(`^${src}$`);
}
function _splitOnce(s, sep) {
  const i = s.indexOf(sep);
  return [
    s.slice(0, i),
    s.slice(i + sep.length)
  ];
}
function _int(name, v, min, max) {
  const n = safeIntegerAny(v, name);
  if (n < min || n > max) {
    throw new RangeError(`${name} must be between ${min} and ${max}, got ${n}`);
  }
  return n;
}
function _oneOf(name, v, allowed) {
  if (!allowed.includes(v)) {
    throw new RangeError(`${name} must be one of ${allowed.join(", ")}, got ${String(v)}`);
  }
  return v;
}
function resolveOptions(options) {
  if (options === null || typeof options !== "object") {
    throw new TypeError("options must be an object");
  }
  checkOptionKeys(options, "PerCoreWalOptions");
  const segmentPattern = _segmentPattern(options.segmentPattern ?? DEFAULT_SEGMENT_PATTERN);
  const { segmentSizeBytes, maxRecordBytes } = _segmentAndRecordSizes(options);
  const ringEntries = _int("ringEntries", options.ringEntries ?? 256, 8, 4096);
  if ((ringEntries & ringEntries - 1) !== 0) {
    throw new RangeError(`ringEntries must be a power of two, got ${ringEntries}`);
  }
  const syncDelayMs = options.syncDelayMs ?? 0;
  if (typeof syncDelayMs !== "number" || !(syncDelayMs >= 0 && syncDelayMs <= 1e4)) {
    throw new RangeError(`syncDelayMs must be between 0 and 10000, got ${String(syncDelayMs)}`);
  }
  const sharedBufferBytes = _sharedBufferBytes(options.sharedBufferBytes, maxRecordBytes);
  if (options.pinWorkers !== void 0 && typeof options.pinWorkers !== "boolean") {
    throw new TypeError("pinWorkers must be a boolean");
  }
  if (options.allowSymlinks !== void 0 && typeof options.allowSymlinks !== "boolean") {
    throw new TypeError("allowSymlinks must be a boolean");
  }
  return {
    segmentPattern,
    segmentSizeBytes,
    backend: _oneOf("backend", options.backend ?? "auto", [
      "auto",
      "io_uring",
      "sync"
    ]),
    writeMode: _oneOf("writeMode", options.writeMode ?? "auto", [
      "auto",
      "direct",
      "dsync",
      "buffered"
    ]),
    segmentFill: _oneOf("segmentFill", options.segmentFill ?? "auto", [
      "auto",
      "zeros",
      "allocate"
    ]),
    ringEntries,
    maxBatchBytes: _int("maxBatchBytes", options.maxBatchBytes ?? MiB, 4096, 256 * MiB),
    maxInFlightBatches: _int("maxInFlightBatches", options.maxInFlightBatches ?? 8, 1, ringEntries / 4),
    syncDelayMs,
    maxRecordBytes,
    maxPendingBytes: _int("maxPendingBytes", options.maxPendingBytes ?? 64 * MiB, MiB, 2 ** 40),
    fileMode: _int("fileMode", options.fileMode ?? 384, 0, 511),
    sharedBufferBytes,
    pinWorkers: options.pinWorkers ?? false,
    allowSymlinks: options.allowSymlinks ?? false
  };
}
function _segmentPattern(segmentPattern) {
  if (typeof segmentPattern !== "string") throw new TypeError("segmentPattern must be a string");
  if (/[/\\\0]/.test(segmentPattern) || segmentPattern.includes("..")) {
    throw new RangeError(`segmentPattern "${segmentPattern}" must be a plain file name (no path separator, no "..")`);
  }
  for (const field of [
    "{core_id}",
    "{segment}"
  ]) {
    if (segmentPattern.split(field).length !== 2) {
      throw new RangeError(`segmentPattern "${segmentPattern}" must contain ${field} exactly once`);
    }
  }
  if (segmentPattern.includes("{core_id}{segment}") || segmentPattern.includes("{segment}{core_id}")) {
    throw new RangeError(`segmentPattern "${segmentPattern}" needs a separator between its fields`);
  }
  return segmentPattern;
}
function _segmentAndRecordSizes(options) {
  const segmentSizeBytes = _int("segmentSizeBytes", options.segmentSizeBytes ?? 64 * MiB, 4 * 4096, 2 ** 40);
  if (segmentSizeBytes % 4096 !== 0) {
    throw new RangeError(`segmentSizeBytes must be a multiple of 4096, got ${segmentSizeBytes}`);
  }
  const roomBytes = segmentSizeBytes - SEGMENT_DATA_OFFSET - 4096;
  const maxRecordBytes = options.maxRecordBytes === void 0 ? Math.min(DEFAULT_MAX_RECORD_BYTES, roomBytes) : _int("maxRecordBytes", options.maxRecordBytes, 64, Number.MAX_SAFE_INTEGER);
  if (maxRecordBytes > MAX_CONFIG_RECORD_BYTES) {
    throw new RangeError(`maxRecordBytes must be at most ${MAX_CONFIG_RECORD_BYTES} (a core's shared buffer, at most ${SHARED_BUFFER_MAX_BYTES} bytes, holds two records), got ${maxRecordBytes}`);
  }
  if (maxRecordBytes > roomBytes) {
    throw new RangeError(`maxRecordBytes ${maxRecordBytes} does not fit a segment of ${segmentSizeBytes} bytes (at most ${roomBytes}): raise segmentSizeBytes or lower maxRecordBytes`);
  }
  return {
    segmentSizeBytes,
    maxRecordBytes
  };
}
var SHARED_BUFFER_MAX_BYTES = 2 ** 30;
var MAX_CONFIG_RECORD_BYTES = Math.min(MAX_RECORD_BYTES_LIMIT, SHARED_BUFFER_MAX_BYTES / 2 - 8);
function _sharedBufferBytes(asked, maxRecordBytes) {
  const minShared = 2 ** Math.ceil(Math.log2(2 * (maxRecordBytes + 8)));
  const sharedBufferBytes = asked === void 0 ? Math.max(8 * MiB, minShared) : _int("sharedBufferBytes", asked, 4096, SHARED_BUFFER_MAX_BYTES);
  if ((sharedBufferBytes & sharedBufferBytes - 1) !== 0 || sharedBufferBytes < minShared) {
    throw new RangeError(`sharedBufferBytes must be a power of two of at least ${minShared} (twice maxRecordBytes), got ${sharedBufferBytes}`);
  }
  return sharedBufferBytes;
}
function directoryMode(fileMode) {
  return fileMode | (fileMode & 292) >> 2;
}

// src/abort.ts
function checkSignal(signal, what = "signal") {
  if (signal === void 0) return void 0;
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(`${what} must be an AbortSignal, got ${signal === null ? "null" : typeof signal}`);
  }
  return signal;
}
function raceSignal(promise, signal, onAbort) {
  if (signal === void 0) return promise;
  if (signal.aborted) {
    promise.catch(() => {
    });
    onAbort?.();
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const abort = () => {
      promise.catch(() => {
      });
      onAbort?.();
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, {
      once: true
    });
    promise.then((value) => {
      signal.removeEventListener("abort", abort);
      resolve(value);
    }, (error) => {
      signal.removeEventListener("abort", abort);
      reject(error);
    });
  });
}
function signalOf(options, what = "options") {
  if (options === void 0) return void 0;
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${what} must be an object, got ${options === null ? "null" : typeof options}`);
  }
  return checkSignal(options.signal);
}
function waitSignal(options) {
  checkOptionKeys(options, "WaitOptions");
  return signalOf(options);
}
function durableWaitSignal(sequence, options) {
  const signal = waitSignal(options);
  safeInteger(sequence, "sequence");
  return signal;
}

// src/core_log.ts
init_errors();

// src/events.ts
function emitEvent(onEvent, event) {
  if (onEvent === void 0) return;
  try {
    onEvent(event);
  } catch (e) {
    console.error(`@percore/wal: onEvent threw while handling a "${event.type}" event:`, e);
  }
}

// src/batch.ts
var BatchState = {
  /** Takes appends. */
  Open: 0,
  /** Sealed, waiting for a slot in flight. */
  Queued: 1,
  /** Written (and fdatasynced) by the backend. */
  Submitted: 2,
  /** Durable, waiting for the batches before it. */
  Done: 3
};
var BatchBuffers = class {
  /** The size of a pooled buffer. */
  batchSize;
  #io;
  #keep;
  #pool = [];
  /** Buffers from `io`, pooled up to `maxInFlightBatches + 2`. */
  constructor(io, maxBatchBytes, maxInFlightBatches) {
    this.#io = io;
    this.batchSize = Math.ceil(maxBatchBytes / 4096) * 4096;
    this.#keep = maxInFlightBatches + 2;
  }
  /** A buffer for a batch of `size` bytes (pooled when it fits `batchSize`). */
  take(size) {
    return size <= this.batchSize ? this.#pool.pop() ?? this.#io.allocBuffer(this.batchSize) : this.#io.allocBuffer(Math.ceil(size / 4096) * 4096);
  }
  /** Gives an acknowledged batch's buffers back. */
  release(b) {
    if (b.header !== void 0) this.#io.freeBuffer(b.header);
    b.header = void 0;
    if (b.pooled && this.#pool.length < this.#keep) this.#pool.push(b.buf);
    else this.#io.freeBuffer(b.buf);
  }
  /** Frees a batch's buffers (at close: nothing goes back to the pool). */
  free(b) {
    if (b.header !== void 0) this.#io.freeBuffer(b.header);
    b.header = void 0;
    this.#io.freeBuffer(b.buf);
  }
  /** Frees the pooled buffers. */
  drain() {
    for (const buf of this.#pool.splice(0)) this.#io.freeBuffer(buf);
  }
};
function openBatch(buffers, len, seg, fileOffset, coreId, epoch, firstSeq, nowUs) {
  const size = len + BATCH_MARKER_BYTES;
  const buf = buffers.take(size);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  writeBatchMarker(view, 0, coreId, epoch, firstSeq, nowUs);
  return {
    buf,
    view,
    used: BATCH_MARKER_BYTES,
    fileOffset,
    seg,
    firstSeq,
    lastSeq: firstSeq - 1,
    lastPos: 0,
    recordBytes: 0,
    state: BatchState.Open,
    pooled: size <= buffers.batchSize,
    header: void 0
  };
}
function padBatch(b, end) {
  const p = b.lastPos;
  const length = end - p;
  b.buf.fill(0, b.used, end);
  b.view.setUint32(p + R_LENGTH, length, true);
  b.view.setUint16(p + R_PAD, end - b.used, true);
  b.view.setUint32(p + R_CRC, recordCrc(b.buf, p, length, saltState(b.seg.salt)), true);
  b.used = end;
}

// src/assert.ts
init_errors();
function invariantError(invariant, details = {}) {
  const where = details.coreId === void 0 ? "" : ` (core ${details.coreId})`;
  return new PerCoreWalError("Internal", `Invariant violated${where}: ${invariant}`, details);
}
function assert(condition, invariant, details) {
  if (!condition) throw invariantError(invariant, details);
}

// src/durable_waiters.ts
var DurableWaiters = class {
  #waiters = [];
  /** Adds a wait for `seq` (after the waits for the same sequence); returns it, for `remove`. */
  add(seq, resolve, reject) {
    const w = this.#waiters;
    let i = w.length;
    while (i > 0 && w[i - 1].seq > seq) i--;
    const waiter = {
      seq,
      resolve,
      reject
    };
    w.splice(i, 0, waiter);
    return waiter;
  }
  /** Removes a wait that was aborted (it is then never settled). */
  remove(waiter) {
    const i = this.#waiters.indexOf(waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
  }
  /** Resolves the waits for sequences up to `durableSeq`. */
  resolveThrough(durableSeq) {
    const w = this.#waiters;
    let n = 0;
    while (n < w.length && w[n].seq <= durableSeq) n++;
    for (const x of w.splice(0, n)) x.resolve();
  }
  /** Rejects the waits for sequences from `seq` on with `error`. */
  rejectFrom(seq, error) {
    const w = this.#waiters;
    let i = w.length;
    while (i > 0 && w[i - 1].seq >= seq) i--;
    for (const x of w.splice(i)) x.reject(error);
  }
  /** Rejects every wait with `error`. */
  rejectAll(error) {
    for (const x of this.#waiters.splice(0)) x.reject(error);
  }
};

// src/batch_pipeline.ts
init_errors();

// src/histogram.ts
var SUB = 8;
var BUCKETS = 40 * SUB;
var LATENCY_BUCKET_BOUNDS_US = Object.freeze(Array.from({
  length: 17
}, (_, i) => 2 ** (i + 6)));
var LatencyHistogram = class {
  #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;
  #sum = 0;
  /** Adds one sample. */
  record(us) {
    const v = Math.max(1, us);
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log2(v) * SUB));
    this.#counts[i]++;
    this.#count++;
    this.#sum += us;
    if (us > this.#max) this.#max = us;
  }
  /** Cumulative counts below each of {@linkcode LATENCY_BUCKET_BOUNDS_US}, and the sum. */
  buckets() {
    const counts = [];
    let seen = 0;
    let i = 0;
    for (const bound of LATENCY_BUCKET_BOUNDS_US) {
      const last = Math.log2(bound) * SUB - 1;
      for (; i <= last; i++) seen += this.#counts[i];
      counts.push(seen);
    }
    return {
      counts,
      sumUs: Math.round(this.#sum)
    };
  }
  /** The value below which a fraction `q` of the samples lie (bucket upper bound). */
  quantile(q) {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.min(this.#max, 2 ** ((i + 1) / SUB));
    }
    return this.#max;
  }
  /** Count, p50, p99 and max. */
  summary() {
    return {
      count: this.#count,
      p50Us: Math.round(this.quantile(0.5)),
      p99Us: Math.round(this.quantile(0.99)),
      maxUs: Math.round(this.#max)
    };
  }
};

// src/batch_pipeline.ts
var DSYNC_WRITE_MAX_BYTES = 128 * 1024;
var BatchPipeline = class {
  /** Waits for a sequence to become durable. */
  waiters = new DurableWaiters();
  #coreId;
  #io;
  #mode;
  #maxInFlight;
  #buffers;
  #segments;
  #hooks;
  #onDurable;
  #onFail;
  /** Sealed batches not yet acknowledged, in file order. */
  #queue = [];
  #latency = new LatencyHistogram();
  #inflight = 0;
  /** Sealed batches not submitted yet (waiting for a slot, or for their segment's layout). */
  #waiting = 0;
  #durableSeq = 0;
  #durablePos = {
    segment: 0,
    offset: SEGMENT_DATA_OFFSET,
    sequence: 0
  };
  #failed;
  #idle;
  #batches = 0;
  #syncs = 0;
  /** A pipeline for core `coreId`'s batches, written through `io` in `mode`. */
  constructor(coreId, io, mode, maxInFlightBatches, buffers, segments, hooks, options) {
    this.#coreId = coreId;
    this.#io = io;
    this.#mode = mode;
    this.#maxInFlight = maxInFlightBatches;
    this.#buffers = buffers;
    this.#segments = segments;
    this.#hooks = hooks;
    this.#onDurable = options.onDurable;
    this.#onFail = options.onFail;
  }
  /** Sets where the durable records end (at open, after recovery). */
  startAt(durableSeq, position) {
    this.#durableSeq = durableSeq;
    this.#durablePos = position;
  }
  /** Sequence of the last durable record (0 when none). */
  get durableSequence() {
    return this.#durableSeq;
  }
  /** The end of the durable records. */
  get durablePosition() {
    return this.#durablePos;
  }
  /** The last sequence in a sealed batch (queued or acknowledged). */
  get lastSealedSequence() {
    const q = this.#queue;
    return q.length > 0 ? q[q.length - 1].lastSeq : this.#durableSeq;
  }
  /**
   * The first sequence of `seg`'s batches not yet submitted, or the one after the last sealed
   * batch when none waits.
   */
  firstWaitingSequence(seg) {
    for (const b of this.#queue) {
      if (b.seg === seg && b.state === BatchState.Queued) return b.firstSeq;
    }
    return this.lastSealedSequence + 1;
  }
  /** Whether another batch may be submitted now. */
  get hasFreeSlot() {
    return this.#inflight + this.#waiting < this.#maxInFlight;
  }
  /** Batches submitted and not yet durable. */
  get inFlight() {
    return this.#inflight;
  }
  /** Batches submitted since open. */
  get batches() {
    return this.#batches;
  }
  /** fdatasyncs submitted since open (a batch written with durable writes has none). */
  get syncs() {
    return this.#syncs;
  }
  /** Time from a batch's submission to its durability. */
  get latency() {
    return this.#latency;
  }
  /** Queues a sealed batch and submits what can be. */
  enqueue(b) {
    b.state = BatchState.Queued;
    this.#waiting++;
    this.#queue.push(b);
    this.pump();
  }
  /** Submits queued batches in order, up to `maxInFlightBatches`. */
  pump() {
    if (this.#failed !== void 0) return;
    for (const b of this.#queue) {
      if (b.state !== BatchState.Queued) continue;
      if (this.#inflight >= this.#maxInFlight) break;
      const seg = b.seg;
      if (!seg.ready) break;
      const end = b.fileOffset + b.used;
      this.#segments.keepAhead(seg, end);
      if (end > seg.laidOut) break;
      sealBatchMarker(b.buf, b.view, 0, this.#durableSeq, saltState(seg.salt));
      const parts = [
        {
          data: b.buf.subarray(0, b.used),
          offset: b.fileOffset
        }
      ];
      if (seg.headerBlock !== void 0) {
        b.header = seg.headerBlock;
        seg.headerBlock = void 0;
        parts.unshift({
          data: b.header,
          offset: 0
        });
      }
      b.state = BatchState.Submitted;
      this.#waiting--;
      this.#inflight++;
      this.#batches++;
      const sync = this.#durability(b.used);
      if (sync === true) this.#syncs++;
      const t0 = performance.now();
      this.#io.writeParts(seg.file, parts, sync, "data").then(() => this.#done(b, t0), (e) => this.#settle(e));
    }
    this.#hooks.pumped();
  }
  /**
   * How a batch of `bytes` is made durable: by the file (opened `O_DSYNC`), by its writes
   * (`RWF_DSYNC`, small batches in `"direct"` mode), or by an fdatasync after them.
   */
  #durability(bytes) {
    if (this.#mode === "dsync") return false;
    return this.#mode === "direct" && bytes <= DSYNC_WRITE_MAX_BYTES ? "dsync" : true;
  }
  #done(b, t0) {
    if (this.#failed !== void 0) {
      this.#settle();
      return;
    }
    this.#latency.record((performance.now() - t0) * 1e3);
    b.state = BatchState.Done;
    const q = this.#queue;
    while (q.length > 0 && q[0].state === BatchState.Done) {
      const d = q.shift();
      if (d.lastSeq >= d.firstSeq) {
        if (d.firstSeq !== this.#durableSeq + 1) {
          this.violated("batches are acknowledged in order");
          return this.#settle();
        }
        if (d.lastSeq < this.#durableSeq) {
          this.violated("the durable sequence never goes back");
          return this.#settle();
        }
        this.#durableSeq = d.lastSeq;
        this.#durablePos = {
          segment: d.seg.index,
          offset: d.fileOffset + d.used,
          sequence: d.lastSeq
        };
      }
      this.#hooks.acknowledged(d.recordBytes);
      this.#release(d);
    }
    this.#onDurable?.(this.#durableSeq, this.#durablePos);
    this.waiters.resolveThrough(this.#durableSeq);
    this.#settle();
  }
  /** One submitted batch finished, well or not. */
  #settle(err) {
    if (--this.#inflight < 0) {
      this.#inflight = 0;
      this.violated("the in-flight batch count is never negative");
    }
    if (err !== void 0) this.fail(err);
    else this.pump();
    if (this.#inflight === 0 && this.#idle !== void 0) this.#idle();
  }
  #release(b) {
    this.#buffers.release(b);
    const seg = b.seg;
    seg.batches--;
    if (seg.sealed && seg.batches === 0) this.#segments.closeSegment(seg);
  }
  /** Fails the core with an `Internal` error naming `invariant`, and returns that error. */
  violated(invariant) {
    const error = invariantError(invariant, {
      coreId: this.#coreId
    });
    this.fail(error);
    return error;
  }
  /** Fails the core (the first failure wins): every wait is rejected with it. */
  fail(err) {
    if (this.#failed !== void 0) return;
    const failed = err instanceof PerCoreWalError ? err : new PerCoreWalError("Io", `Core ${this.#coreId} failed: ${err}`, {
      coreId: this.#coreId,
      cause: err
    });
    this.#failed = failed;
    this.#hooks.failed(failed);
    this.waiters.rejectAll(failed);
    this.#onFail?.(failed);
  }
  /** Resolves when nothing is in flight. */
  drained() {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle = resolve);
  }
  /** Frees the buffers of the batches still queued (at close). */
  freeQueued() {
    for (const b of this.#queue.splice(0)) this.#buffers.free(b);
    this.#waiting = 0;
  }
};

// src/write_mode.ts
init_errors();
function chooseWriteMode(config, io) {
  const asked = config.options.writeMode;
  if (io.kind === "sync") {
    if (asked === "direct" || asked === "dsync") {
      throw new PerCoreWalError("Unsupported", `writeMode "${asked}" needs the io_uring backend; the sync backend writes buffered`);
    }
    return "buffered";
  }
  if (asked === "buffered") return "buffered";
  const direct = io.supportsDirect(config.baseDir);
  if (asked === "auto") return direct ? "direct" : "buffered";
  if (!direct) {
    throw new PerCoreWalError("Unsupported", `writeMode "${asked}" needs O_DIRECT, which the file system of "${config.baseDir}" refuses (tmpfs does): use writeMode "buffered" or another directory`, {
      errno: "EINVAL"
    });
  }
  return asked;
}

// ffi/paths.ts
function librarySearchPath(soname) {
  return [
    soname,
    `/usr/lib/x86_64-linux-gnu/${soname}`,
    `/usr/lib/aarch64-linux-gnu/${soname}`,
    `/usr/lib64/${soname}`,
    `/usr/lib/${soname}`
  ];
}

// ffi/isal.ts
var symbols = {
  // unsigned int crc32_iscsi(unsigned char *buffer, int len, unsigned int init_crc)
  // Returns the raw (not inverted) CRC32C state, continuing from init_crc. The buffer is passed
  // as its address (a bigint from Deno.UnsafePointer): no view is made per call, and V8 calls it
  // through its fast path.
  crc32_iscsi: {
    parameters: [
      "usize",
      "i32",
      "u32"
    ],
    result: "u32"
  }
};
var CANDIDATES = librarySearchPath("libisal.so.2");
var lib;
function isal() {
  if (lib !== void 0) return lib ?? void 0;
  lib = null;
  if (Deno.build.os !== "linux") return void 0;
  if (Deno.permissions.querySync({
    name: "ffi"
  }).state !== "granted") return void 0;
  let override;
  if (Deno.permissions.querySync({
    name: "env",
    variable: "DENO_ISAL_PATH"
  }).state === "granted") {
    override = Deno.env.get("DENO_ISAL_PATH");
  }
  for (const path of override ? [
    override
  ] : CANDIDATES) {
    try {
      lib = Deno.dlopen(path, symbols).symbols;
      return lib;
    } catch {
    }
  }
  return void 0;
}

// src/io/checksum.ts
var _tried = false;
var _name = "typescript";
function enableNativeCrc32c() {
  if (_tried) return _name;
  _tried = true;
  const lib4 = isal();
  if (lib4 !== void 0) {
    const at = lib4.crc32_iscsi;
    const bases = /* @__PURE__ */ new WeakMap();
    let last;
    let lastBase = 0n;
    setCrc32cAccelerator((bytes, start, end, state) => {
      const buffer = bytes.buffer;
      if (buffer !== last) {
        let base = bases.get(buffer);
        if (base === void 0) {
          const p = Deno.UnsafePointer.of(new Uint8Array(buffer));
          assert(p !== null, "a non-empty buffer has an address");
          base = BigInt(Deno.UnsafePointer.value(p));
          bases.set(buffer, base);
        }
        last = buffer;
        lastBase = base;
      }
      return at(lastBase + BigInt(bytes.byteOffset + start), end - start, state >>> 0) | 0;
    });
    _name = "isa-l";
  }
  return _name;
}

// src/segment_prep.ts
init_errors();

// src/fs.ts
init_errors();

// ffi/errno.ts
init_errors();
var NAMES = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  38: "ENOSYS",
  40: "ELOOP",
  62: "ETIME",
  95: "EOPNOTSUPP",
  122: "EDQUOT",
  125: "ECANCELED"
};
function errnoName(errno) {
  return NAMES[Math.abs(errno)] ?? `E${Math.abs(errno)}`;
}
var Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EAGAIN: 11,
  ENOMEM: 12,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ETIME: 62,
  ECANCELED: 125
};
function check(res, operation, where = {}) {
  if (res >= 0) return res;
  throw errnoError(-res, operation, where);
}
function errnoError(errno, operation, where = {}) {
  const name = errnoName(errno);
  const at = where.path === void 0 ? "" : ` on "${where.path}"`;
  const off = where.offset === void 0 ? "" : ` at offset ${where.offset}`;
  return new PerCoreWalError("Io", `${operation} failed${at}${off}: ${name}`, {
    errno: name,
    operation,
    segment: where.path,
    coreId: where.coreId,
    offset: where.offset
  });
}

// src/io/open_read.ts
init_libc();

// ffi/layout.ts
var IoUring = {
  size: 216,
  sq: {
    khead: 0,
    ktail: 8,
    kringMask: 16,
    kringEntries: 24,
    kflags: 32,
    kdropped: 40,
    array: 48,
    sqes: 56,
    sqeHead: 64,
    sqeTail: 68,
    ringSz: 72,
    ringPtr: 80,
    ringMask: 88,
    ringEntries: 92
  },
  cq: {
    khead: 104,
    ktail: 112,
    kringMask: 120,
    kringEntries: 128,
    kflags: 136,
    koverflow: 144,
    cqes: 152,
    ringSz: 160,
    ringPtr: 168,
    ringMask: 176,
    ringEntries: 180
  },
  flags: 192,
  ringFd: 196,
  features: 200
};
var IoUringParams = {
  size: 120,
  sqEntries: 0,
  cqEntries: 4,
  flags: 8,
  features: 20
};
var Sqe = {
  size: 64,
  opcode: 0,
  flags: 1,
  ioprio: 2,
  fd: 4,
  off: 8,
  addr: 16,
  len: 24,
  rwFlags: 28,
  userData: 32,
  bufIndex: 40
};
var Op = {
  NOP: 0,
  WRITEV: 2,
  FSYNC: 3,
  FALLOCATE: 17,
  READ: 22,
  WRITE: 23
};
var IOSQE_IO_LINK = 1 << 2;
var IORING_FEAT_EXT_ARG = 1 << 8;
var IORING_FSYNC_DATASYNC = 1;
var RWF_DSYNC = 2;
var IORING_SETUP_SINGLE_ISSUER = 1 << 12;
var O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 64,
  EXCL: 128,
  TRUNC: 512,
  DSYNC: 4096,
  DIRECT: 16384,
  DIRECTORY: 65536,
  NOFOLLOW: 131072,
  CLOEXEC: 524288
};
var EFD_CLOEXEC = 524288;

// src/io/open_read.ts
var _O_NONBLOCK = 2048;
var _O_NOCTTY = 256;
var _usable;
function canOpenWithoutBlocking() {
  if (_usable !== void 0) return _usable;
  _usable = false;
  try {
    if (Deno.permissions.querySync({
      name: "ffi"
    }).state !== "granted") return false;
    const proc = Deno.permissions.querySync({
      name: "read",
      path: "/proc/self/fd"
    });
    if (proc.state !== "granted" || !Deno.statSync("/proc/self/fd").isDirectory) return false;
    libc();
    _usable = true;
  } catch {
  }
  return _usable;
}
function openReadNonBlocking(path) {
  const flags = O.RDONLY | _O_NONBLOCK | O.NOFOLLOW | _O_NOCTTY | O.CLOEXEC;
  const fd = libc().open(cString(path), flags, 0);
  if (fd < 0) throw errnoError(-lastErrno(), "open", {
    path
  });
  return fd;
}
function closeDescriptor(fd) {
  libc().close(fd);
}

// src/fs.ts
function ioError(e, operation, path, offset) {
  if (e instanceof PerCoreWalError) return e;
  const errno = e?.code;
  const at = path === void 0 ? "" : ` on "${path}"`;
  const off = offset === void 0 ? "" : ` at offset ${offset}`;
  const why = errno ?? (e instanceof Error ? e.message : String(e));
  return new PerCoreWalError("Io", `${operation} failed${at}${off}: ${why}`, {
    errno,
    operation,
    segment: path,
    offset,
    cause: e
  });
}
function isMissing(e) {
  return e instanceof Deno.errors.NotFound || e instanceof PerCoreWalError && e.code === "Io" && e.errno === "ENOENT";
}
var _realOps = {
  rename: (from, to) => Deno.renameSync(from, to),
  remove: (path, options) => Deno.removeSync(path, options),
  truncate: (path, length) => {
    using f = Deno.openSync(path, {
      read: true,
      write: true
    });
    f.truncateSync(length);
    f.syncSync();
  },
  syncFile: (path, dataOnly, readOnly) => {
    using f = Deno.openSync(path, {
      read: true,
      write: !readOnly
    });
    if (dataOnly) f.syncDataSync();
    else f.syncSync();
  },
  syncDirectory: (path) => {
    using dir = Deno.openSync(path, {
      read: true
    });
    dir.syncSync();
  },
  writeSynced: (path, bytes, options) => {
    using file = Deno.openSync(path, options);
    let done = 0;
    while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
    file.syncSync();
  },
  makeDirectory: (path, options) => Deno.mkdirSync(path, options),
  createWritable: (path, mode) => {
    const file = Deno.openSync(path, {
      write: true,
      create: true,
      truncate: true,
      mode
    });
    let closed = false;
    return {
      write: (bytes) => {
        let done = 0;
        while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      },
      sync: () => file.syncSync(),
      close: () => {
        if (closed) return;
        closed = true;
        file.close();
      }
    };
  },
  createNew: (path, mode) => Deno.openSync(path, {
    read: true,
    write: true,
    createNew: true,
    mode
  })
};
var _ops = _realOps;
function replaceDurabilityOps(ops) {
  const before = _ops;
  _ops = ops ?? _realOps;
  return before;
}
function _io(operation, path, fn) {
  try {
    return fn();
  } catch (e) {
    throw ioError(e, operation, path);
  }
}
function openFile(path, options) {
  return _io("open", path, () => Deno.openSync(path, options));
}
function lstatPath(path) {
  return _io("lstat", path, () => Deno.lstatSync(path));
}
function lstatIfExists(path) {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return void 0;
    throw ioError(e, "lstat", path);
  }
}
function statPath(path) {
  return _io("stat", path, () => Deno.statSync(path));
}
function readDirectory(path) {
  return _io("read directory", path, () => Array.from(Deno.readDirSync(path)));
}
function removePath(path, options) {
  _io("remove", path, () => _ops.remove(path, options));
}
function removeIfExists(path, options) {
  try {
    _ops.remove(path, options);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw ioError(e, "remove", path);
  }
}
function renamePath(from, to) {
  _io("rename", from, () => _ops.rename(from, to));
}
function makeDirectory(path, options) {
  _io("mkdir", path, () => _ops.makeDirectory(path, options));
}
function readFullyAt(file, into, offset) {
  file.seekSync(offset, Deno.SeekMode.Start);
  let n = 0;
  while (n < into.length) {
    const r = file.readSync(into.subarray(n));
    if (r === null) break;
    n += r;
  }
  return n;
}
function syncDirectory(path) {
  _io("fsync directory", path, () => _ops.syncDirectory(path));
}
function syncFile(path) {
  _io("fsync", path, () => _ops.syncFile(path, false, false));
}
function truncateFile(path, length) {
  _io("ftruncate", path, () => _ops.truncate(path, length));
}
async function _ioAsync(operation, path, fn) {
  try {
    return await fn();
  } catch (e) {
    throw ioError(e, operation, path);
  }
}
function readLink(path) {
  return _io("readlink", path, () => Deno.readLinkSync(path));
}
function readSome(file, buf, path) {
  return _io("read", path, () => file.readSync(buf));
}
function _kind2(info) {
  if (info.isSymlink) return "a symbolic link";
  if (info.isFifo) return "a FIFO";
  if (info.isSocket) return "a socket";
  if (info.isCharDevice || info.isBlockDevice) return "a device";
  return "not a regular file";
}
function _notRegular(path, what, why) {
  return new PerCoreWalError("Unsafe", `${what} "${path}" is ${why}: only regular files are opened`, {
    segment: path,
    operation: "open"
  });
}
function openRegularFile(path, what) {
  const before = lstatPath(path);
  refuseNonRegular(before, path, what);
  _ops.beforeOpenForRead?.(path);
  const fd = _openNoBlock(path, what);
  if (fd === void 0) {
    const file = openFile(path, {
      read: true
    });
    try {
      _sameRegularFile(before, file.statSync(), path, what);
    } catch (e) {
      file.close();
      throw ioError(e, "fstat", path);
    }
    return file;
  }
  try {
    const proc = _verifiedDescriptor(fd, before, path, what);
    return _io("open", path, () => Deno.openSync(proc, {
      read: true
    }));
  } finally {
    closeDescriptor(fd);
  }
}
function _openNoBlock(path, what) {
  if (!canOpenWithoutBlocking()) return void 0;
  try {
    return openReadNonBlocking(path);
  } catch (e) {
    if (e instanceof PerCoreWalError && e.errno === "ELOOP") {
      throw _notRegular(path, what, "a symbolic link, swapped in while being opened");
    }
    throw e;
  }
}
function _verifiedDescriptor(fd, before, path, what) {
  const proc = `/proc/self/fd/${fd}`;
  _sameRegularFile(before, _io("fstat", path, () => Deno.statSync(proc)), path, what);
  return proc;
}
function entryKind(info) {
  if (info.isFile) return "a regular file";
  if (info.isDirectory) return "a directory";
  return _kind2(info);
}
function refuseNonRegular(info, path, what) {
  if (info.isFile) return;
  if (info.isDirectory) {
    throw new PerCoreWalError("Io", `read failed on "${path}": EISDIR (${what} is a directory)`, {
      errno: "EISDIR",
      operation: "read",
      segment: path
    });
  }
  throw _notRegular(path, what, _kind2(info));
}
async function openRegularFileAsync(path, what) {
  let before;
  try {
    before = await Deno.lstat(path);
  } catch (e) {
    throw ioError(e, "lstat", path);
  }
  refuseNonRegular(before, path, what);
  _ops.beforeOpenForRead?.(path);
  const fd = _openNoBlock(path, what);
  if (fd !== void 0) {
    try {
      const proc = _verifiedDescriptor(fd, before, path, what);
      return await _ioAsync("open", path, () => Deno.open(proc, {
        read: true
      }));
    } finally {
      closeDescriptor(fd);
    }
  }
  let file;
  try {
    file = await Deno.open(path, {
      read: true
    });
  } catch (e) {
    throw ioError(e, "open", path);
  }
  try {
    _sameRegularFile(before, await file.stat(), path, what);
  } catch (e) {
    file.close();
    throw ioError(e, "fstat", path);
  }
  return file;
}
function _sameRegularFile(before, after, path, what) {
  if (!after.isFile) {
    throw _notRegular(path, what, `${entryKind(after)}, swapped in while being opened`);
  }
  if (after.ino !== before.ino || after.dev !== before.dev) {
    throw _notRegular(path, what, "replaced while being opened");
  }
}

// src/segment_window.ts
var KiB = 1024;
var MiB2 = 1024 * KiB;
var MAX_FIRST_WINDOW_BYTES = 1 * MiB2;
var MAX_LAYOUT_STEP_BYTES = 16 * MiB2;
var MIN_FIRST_WINDOW_BYTES = 16 * KiB;
var BLOCK = 4096;
function _roundUp(n) {
  return Math.ceil(n / BLOCK) * BLOCK;
}
function firstWindowBytes(sizeBytes) {
  const w = Math.min(MAX_FIRST_WINDOW_BYTES, Math.max(MIN_FIRST_WINDOW_BYTES, _roundUp(sizeBytes / 64)));
  return Math.min(w, sizeBytes);
}
function layoutTarget(laidOut, end, sizeBytes, sealed) {
  if (laidOut >= sizeBytes) return laidOut;
  if (sealed) return end <= laidOut ? laidOut : Math.min(sizeBytes, _roundUp(end));
  const step = Math.min(MAX_LAYOUT_STEP_BYTES, Math.max(firstWindowBytes(sizeBytes), laidOut));
  if (end + step / 2 <= laidOut) return laidOut;
  return Math.min(sizeBytes, _roundUp(Math.max(end, laidOut) + step));
}
function nextSegmentWindow(sizeBytes) {
  return Math.min(sizeBytes, MAX_LAYOUT_STEP_BYTES);
}

// src/segment_prep.ts
var MiB3 = 1024 * 1024;
var AUTO_ALLOCATE_BATCH_BYTES = 256 * 1024;
var SegmentPreparer = class {
  /** Segments whose files are open (prepared, current, or sealed with batches in flight). */
  openSegments = /* @__PURE__ */ new Set();
  #config;
  #options;
  #io;
  #coreId;
  #mode;
  #onSettled;
  /** A MiB of zeros for the zero-fill, allocated on first use. */
  #zeros;
  /** What `segmentFill: "auto"` chose last, and the batch counters when it did. */
  #autoFill = "zeros";
  #fillBatches = 0;
  #fillBytes = 0;
  /** Set by {@linkcode settle}: no layout starts any more. */
  #settling = false;
  /** Segments whose file waits for the previous segment's preparation to be durable. */
  #deferred = [];
  /** A preparer for core `coreId`, writing through `io` in `mode`. */
  constructor(config, coreId, io, mode, onSettled) {
    this.#config = config;
    this.#options = config.options;
    this.#coreId = coreId;
    this.#io = io;
    this.#mode = mode;
    this.#onSettled = onSettled;
  }
  /** Whether a segment is being prepared, or more of one laid out. */
  get preparing() {
    for (const seg of this.openSegments) {
      if (!seg.ready && seg.error === void 0 || seg.extending) return true;
    }
    return false;
  }
  /**
   * Creates segment `index` in the background, laid out as `segmentFill` says ({@linkcode
   * fillFor}, from the engine's batch counters). With `quiet`, a failure to create the file is
   * kept on the segment and surfaces only if the log has to rotate into it. While `after` (the
   * previous segment) is not ready, the file is created only once it is; a failure then is kept
   * on the segment whatever `quiet` says.
   */
  prepare(index, quiet, batches, bytes, after) {
    const path = this.#config.segmentPath(this.#coreId, index);
    const fill = this.fillFor(batches, bytes);
    const seg = {
      index,
      path,
      file: {
        path
      },
      firstSequence: 0,
      salt: 0,
      headerBlock: void 0,
      batches: 0,
      sealed: false,
      ready: false,
      error: void 0,
      prepared: Promise.resolve(),
      fill,
      laidOut: 0,
      extending: false,
      created: false
    };
    if (after !== void 0 && !after.ready) {
      seg.after = after;
      this.#deferred.push(seg);
      return seg;
    }
    try {
      this.#create(seg);
    } catch (e) {
      if (!quiet) throw e;
      seg.error = e;
    }
    return seg;
  }
  /**
   * Prepares again a segment whose preparation failed after the engine began to use it (its
   * batches wait, with its salt and first sequence): its file is made anew in place.
   */
  retry(seg) {
    if (seg.error === void 0) return;
    if (seg.ready) {
      seg.error = void 0;
      this.keepAhead(seg, seg.laidOut + 1);
      return;
    }
    if (seg.created) {
      this.#io.closeFile(seg.file);
      removeIfExists(seg.path);
      seg.created = false;
    }
    seg.file = {
      path: seg.path
    };
    try {
      this.#create(seg);
      seg.error = void 0;
    } catch (e) {
      seg.error = _asWalError(e);
    }
  }
  /** Opens a new file for `seg` and starts laying it out; throws if the file cannot be made. */
  #create(seg) {
    try {
      seg.file = this.#io.openFile(seg.path, this.openOptions(true));
    } catch (e) {
      throw _inTheWay(e, seg.path);
    }
    seg.created = true;
    seg.ready = false;
    this.openSegments.add(seg);
    seg.prepared = this.#layOut(seg).then(() => {
      seg.ready = true;
      this.#startDeferred(seg);
      this.#onSettled(seg);
    }, (e) => {
      seg.error = _asWalError(e);
      this.#onSettled(seg);
    });
  }
  /** Creates the segment that waited for `ready`'s preparation to be durable. */
  #startDeferred(ready) {
    const i = this.#deferred.findIndex((d) => d.after === ready);
    if (i < 0 || this.#settling) return;
    const [seg] = this.#deferred.splice(i, 1);
    seg.after = void 0;
    try {
      this.#create(seg);
    } catch (e) {
      seg.error = _asWalError(e);
      this.#onSettled(seg);
    }
  }
  /**
   * How the next segment is laid out. `"auto"` looks at the batches written since its last
   * choice: large ones (bandwidth-bound) skip the zero-fill, small ones (latency-bound) keep it;
   * with no batch since (a new or idle log), the last choice stands, at first `"zeros"`.
   */
  fillFor(batches, bytes) {
    const f = this.#options.segmentFill;
    if (f !== "auto") return f;
    const newBatches = batches - this.#fillBatches;
    if (newBatches > 0) {
      const avg = (bytes - this.#fillBytes) / newBatches;
      this.#autoFill = avg >= AUTO_ALLOCATE_BATCH_BYTES ? "allocate" : "zeros";
      this.#fillBatches = batches;
      this.#fillBytes = bytes;
    }
    return this.#autoFill;
  }
  /**
   * Gives a new segment its full size, as a sparse file, lays out its first window
   * (`segment_window.ts`) and makes that durable (size, window and directory entry). The rest is
   * laid out ahead of the writer ({@linkcode keepAhead}).
   */
  async #layOut(seg) {
    await Promise.resolve();
    const size = this.#options.segmentSizeBytes;
    this.#io.truncate(seg.file, size);
    const window = firstWindowBytes(size);
    await this.#layOutRange(seg, 0, window);
    this.#io.syncDirectory(this.#config.baseDir);
    seg.laidOut = window;
  }
  /**
   * Lays out `[from, to)` of a segment and makes it durable. With `"zeros"`, every block is
   * written, so that an fdatasync into it need not commit extent metadata. With `"allocate"`,
   * the blocks stay unwritten extents: they read as zeros, like zero-filled ones, and each data
   * fdatasync commits their conversion; no byte is written twice.
   */
  async #layOutRange(seg, from, to) {
    if (!this.#io.allocate(seg.file, to) || seg.fill === "zeros") {
      const zeros = this.#zeros ??= this.#io.allocBuffer(MiB3);
      for (let off = from; off < to; off += 4 * MiB3) {
        const parts = [];
        for (let o = off; o < Math.min(off + 4 * MiB3, to); o += MiB3) {
          parts.push({
            data: zeros.subarray(0, Math.min(MiB3, to - o)),
            offset: o
          });
        }
        await this.#io.writeParts(seg.file, parts, false, "prepare");
      }
    }
    await this.#io.writeParts(seg.file, [], true, "prepare");
  }
  /**
   * Lays out more of a ready segment in the background when data is to go up to `end` and the
   * laid-out range is not far enough ahead (`layoutTarget`). Batches past the laid-out end wait
   * for it: `onSettled` runs when it succeeds or fails (a failure is kept on the segment, whose
   * waiting batches then stall until {@linkcode retry}).
   */
  keepAhead(seg, end) {
    const size = this.#options.segmentSizeBytes;
    this.layOutTo(seg, layoutTarget(seg.laidOut, end, size, seg.sealed));
  }
  /**
   * Lays out a ready segment up to `to` in the background (nothing if it is laid out that far,
   * or a layout is in flight); see {@linkcode keepAhead}.
   */
  layOutTo(seg, to) {
    if (this.#settling || !seg.ready || seg.extending || seg.error !== void 0) return;
    if (to <= seg.laidOut) return;
    const from = seg.laidOut;
    seg.extending = true;
    seg.prepared = (async () => {
      await Promise.resolve();
      await this.#layOutRange(seg, from, to);
    })().then(() => {
      seg.laidOut = to;
    }, (e) => {
      seg.error = _asWalError(e);
    }).finally(() => {
      seg.extending = false;
      if (seg.closeWanted) this.closeSegment(seg);
      else this.#onSettled(seg);
    });
  }
  /**
   * Opens the last segment that recovery kept, to continue in it or close it: it is ready, its
   * header already on the disk.
   */
  adopt(index, path, firstSequence, salt, validEnd) {
    refuseNonRegular(lstatPath(path), path, "Segment");
    const file = this.#io.openFile(path, this.openOptions(false));
    const seg = {
      index,
      path,
      file,
      firstSequence,
      salt,
      headerBlock: void 0,
      batches: 0,
      sealed: false,
      ready: true,
      error: void 0,
      prepared: Promise.resolve(),
      fill: this.fillFor(0, 0),
      // What it had laid out is not known: from its valid end on, it is laid out again.
      laidOut: Math.min(this.#options.segmentSizeBytes, Math.ceil(validEnd / 4096) * 4096),
      extending: false
    };
    this.openSegments.add(seg);
    return seg;
  }
  /**
   * Gives a prepared segment that becomes the current one its first sequence, a fresh salt and
   * its header block (written in the chain of its first batch).
   */
  activate(seg, firstSequence, epoch, createdAtUs) {
    const salt = crypto.getRandomValues(new Uint32Array(1))[0] || 1;
    seg.firstSequence = firstSequence;
    seg.salt = salt;
    const block = this.#io.allocBuffer(SEGMENT_DATA_OFFSET);
    block.fill(0);
    block.set(encodeSegmentHeader({
      coreId: this.#coreId,
      segmentIndex: seg.index,
      firstSequence,
      epoch,
      createdAtNs: BigInt(createdAtUs) * 1000n,
      salt
    }));
    seg.headerBlock = block;
  }
  /** Removes a prepared segment that was never started, if this process created its file. */
  discard(seg) {
    const i = this.#deferred.indexOf(seg);
    if (i >= 0) this.#deferred.splice(i, 1);
    this.closeSegment(seg);
    if (seg.created) removeIfExists(seg.path);
  }
  /** Closes a segment's file and frees its header block (once a layout in flight settled). */
  closeSegment(seg) {
    if (seg.extending) {
      seg.closeWanted = true;
      return;
    }
    if (seg.headerBlock !== void 0) this.#io.freeBuffer(seg.headerBlock);
    seg.headerBlock = void 0;
    this.#io.closeFile(seg.file);
    this.openSegments.delete(seg);
  }
  /** How segment files are opened in this write mode. */
  openOptions(createNew) {
    return {
      createNew,
      direct: this.#mode !== "buffered",
      dsync: this.#mode === "dsync",
      mode: this.#options.fileMode
    };
  }
  /** Waits until no preparation or layout is in flight, and starts no new layout (at close). */
  async settle() {
    this.#settling = true;
    for (; ; ) {
      const busy = [
        ...this.openSegments
      ].filter((s) => s.extending || !s.ready && s.error === void 0);
      if (busy.length === 0) return;
      await Promise.all(busy.map((s) => s.prepared));
    }
  }
  /** Frees the zero-fill buffer. */
  release() {
    if (this.#zeros !== void 0) this.#io.freeBuffer(this.#zeros);
    this.#zeros = void 0;
  }
};
function _asWalError(e) {
  if (e instanceof PerCoreWalError) return e;
  return new PerCoreWalError("Io", String(e), {
    cause: e
  });
}
function _inTheWay(e, path) {
  if (!(e instanceof PerCoreWalError) || e.errno !== "EEXIST") return e;
  let what = "something";
  try {
    const info = lstatIfExists(path);
    if (info !== void 0) what = entryKind(info);
  } catch {
  }
  const kind = what === "a regular file" ? "a file this core did not create" : what;
  return new PerCoreWalError(e.code, `Cannot create segment "${path}": it exists and is ${kind} (EEXIST); the WAL creates each segment itself, so move it out of the WAL directory`, {
    errno: e.errno,
    operation: e.operation,
    segment: path,
    coreId: e.coreId,
    cause: e
  });
}

// src/shared_copy.ts
var STAGED_MIN_BYTES = 256;
var SharedCopier = class {
  #staging = new Uint8Array(0);
  /** Copies `src[offset, offset + length)` to `dst[pos, pos + length)`. */
  copy(src, offset, length, dst, pos) {
    const from = src.byteOffset + offset;
    const to = dst.byteOffset + pos;
    const view = new Uint8Array(src.buffer, from, length);
    const srcShared = src.buffer instanceof SharedArrayBuffer;
    if (length < STAGED_MIN_BYTES || (from - to & 7) === 0 || !(srcShared || dst.buffer instanceof SharedArrayBuffer)) {
      dst.set(view, pos);
      return;
    }
    const a = (srcShared ? from : to) & 7;
    if (this.#staging.length < length + a) {
      this.#staging = new Uint8Array(2 ** Math.ceil(Math.log2(length + a)));
    }
    this.#staging.set(view, a);
    dst.set(new Uint8Array(this.#staging.buffer, a, length), pos);
  }
};

// src/operations.ts
function deleteOperation(key) {
  return {
    type: "delete",
    key: toKey(key)
  };
}
function checkpointOperation(id) {
  return normalizeOperation({
    type: "checkpoint",
    id
  }, 0);
}
function commitOperation(offsets, watermark) {
  return normalizeOperation({
    type: "commit",
    offsets,
    watermark
  }, 0);
}
function epochBarrierOperation(epoch, currentEpoch) {
  return normalizeOperation({
    type: "epochBarrier",
    epoch
  }, currentEpoch);
}

// src/io/choose.ts
init_libc();

// ffi/liburing.ts
init_errors();
var symbols3 = {
  // int io_uring_queue_init_params(unsigned entries, struct io_uring *ring, struct io_uring_params *p)
  io_uring_queue_init_params: {
    parameters: [
      "u32",
      "pointer",
      "pointer"
    ],
    result: "i32"
  },
  // void io_uring_queue_exit(struct io_uring *ring)
  io_uring_queue_exit: {
    parameters: [
      "pointer"
    ],
    result: "void"
  },
  // int io_uring_submit(struct io_uring *ring)
  io_uring_submit: {
    parameters: [
      "pointer"
    ],
    result: "i32"
  },
  // int io_uring_submit_and_wait(struct io_uring *ring, unsigned wait_nr)
  io_uring_submit_and_wait: {
    parameters: [
      "pointer",
      "u32"
    ],
    result: "i32"
  },
  // int io_uring_wait_cqes(struct io_uring *ring, struct io_uring_cqe **cqe_ptr, unsigned wait_nr,
  //                        struct __kernel_timespec *ts, sigset_t *sigmask)
  io_uring_wait_cqes: {
    parameters: [
      "pointer",
      "buffer",
      "u32",
      "pointer",
      "pointer"
    ],
    result: "i32"
  },
  // int io_uring_register_eventfd(struct io_uring *ring, int fd)
  io_uring_register_eventfd: {
    parameters: [
      "pointer",
      "i32"
    ],
    result: "i32"
  }
};
var CANDIDATES2 = librarySearchPath("liburing.so.2");
var lib3;
function liburing() {
  if (lib3 !== void 0) return lib3;
  if (Deno.build.os !== "linux") {
    throw new PerCoreWalError("Unsupported", `io_uring needs Linux; this is ${Deno.build.os}`);
  }
  let override;
  const env = {
    name: "env",
    variable: "DENO_LIBURING_PATH"
  };
  if (Deno.permissions.querySync(env).state === "granted") {
    override = Deno.env.get("DENO_LIBURING_PATH");
  }
  const tried = [];
  for (const path of override ? [
    override
  ] : CANDIDATES2) {
    try {
      lib3 = Deno.dlopen(path, symbols3).symbols;
      return lib3;
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new PerCoreWalError("Unsupported", "Cannot load liburing: FFI is not allowed (run Deno with --allow-ffi)", {
          cause: e
        });
      }
      tried.push(path);
    }
  }
  throw new PerCoreWalError("Unsupported", `Cannot load liburing (tried ${tried.join(", ")}): install liburing 2.x (Debian/Ubuntu: apt-get install liburing2) or set DENO_LIBURING_PATH to liburing.so.2`);
}

// src/io/choose.ts
init_errors();

// src/io/sync.ts
init_errors();
var SyncBackend = class {
  /** This is the synchronous backend. */
  kind = "sync";
  openFile(path, o) {
    if (o.direct || o.dsync) {
      throw new PerCoreWalError("Unsupported", "the sync backend writes through the page cache only");
    }
    const file = openFile(path, {
      read: true,
      write: true,
      createNew: o.createNew,
      mode: o.mode
    });
    return {
      path,
      file
    };
  }
  allocate(_file, _length) {
    return false;
  }
  writeParts(file, parts, sync) {
    const f = _open(file);
    let at = 0;
    try {
      for (const p of parts) {
        at = p.offset;
        f.seekSync(p.offset, Deno.SeekMode.Start);
        let done = 0;
        while (done < p.data.length) {
          done += f.writeSync(p.data.subarray(done));
          at = p.offset + done;
        }
      }
    } catch (e) {
      return Promise.reject(ioError(e, "write", file.path, at));
    }
    if (sync) {
      try {
        f.syncDataSync();
      } catch (e) {
        return Promise.reject(ioError(e, "fdatasync", file.path));
      }
    }
    return Promise.resolve();
  }
  readAt(file, into, offset) {
    const f = _open(file);
    try {
      return readFullyAt(f, into, offset);
    } catch (e) {
      throw ioError(e, "read", file.path, offset);
    }
  }
  truncate(file, length) {
    try {
      _open(file).truncateSync(length);
    } catch (e) {
      throw ioError(e, "ftruncate", file.path);
    }
  }
  closeFile(file) {
    const f = file;
    f.file?.close();
    f.file = void 0;
  }
  syncDirectory(path) {
    syncDirectory(path);
  }
  allocBuffer(size) {
    return new Uint8Array(size);
  }
  freeBuffer(_buffer) {
  }
  supportsDirect(_dir) {
    return false;
  }
  close() {
    return Promise.resolve();
  }
};
function _open(file) {
  const f = file.file;
  if (f === void 0) throw new PerCoreWalError("Closed", `"${file.path}" is closed`);
  return f;
}

// src/io/uring.ts
init_libc();
init_errors();

// src/io/ring.ts
init_libc();
init_errors();
var TWO323 = 4294967296;
function _view(ptr, length) {
  return Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(ptr), length);
}
var Ring = class _Ring {
  /** The `struct io_uring` memory (and the params after it). */
  mem;
  #struct;
  #sqRing;
  #sqHead;
  #sqTail;
  #sqes;
  #sqMask;
  /** Submission queue entries. */
  entries;
  #cqRing;
  #cqHead;
  #cqTail;
  #cqes;
  #cqMask;
  #sqeTail;
  #closed = false;
  /** The kernel's `IORING_FEAT_*` flags. */
  features;
  #ts = new BigInt64Array(2);
  #tsPointer = Deno.UnsafePointer.of(this.#ts);
  #cqePointer = new Uint8Array(8);
  constructor(mem, entries) {
    this.mem = mem;
    const s = new DataView(mem.bytes.buffer, 0, IoUring.size);
    this.#struct = s;
    const ptr = (off) => s.getBigUint64(off, true);
    this.entries = s.getUint32(IoUring.sq.ringEntries, true);
    this.features = s.getUint32(IoUring.features, true);
    if (this.entries !== entries) {
      throw new PerCoreWalError("Unsupported", `io_uring ring has ${this.entries} entries, asked for ${entries}: liburing layout mismatch`);
    }
    this.#sqMask = s.getUint32(IoUring.sq.ringMask, true);
    const sqRingPtr = ptr(IoUring.sq.ringPtr);
    this.#sqRing = new Uint32Array(_view(sqRingPtr, s.getUint32(IoUring.sq.ringSz, true) & ~3));
    this.#sqHead = Number(ptr(IoUring.sq.khead) - sqRingPtr) / 4;
    this.#sqTail = Number(ptr(IoUring.sq.ktail) - sqRingPtr) / 4;
    const array = Number(ptr(IoUring.sq.array) - sqRingPtr) / 4;
    for (let i = 0; i < this.entries; i++) this.#sqRing[array + i] = i;
    this.#sqes = new DataView(_view(ptr(IoUring.sq.sqes), this.entries * Sqe.size));
    this.#sqeTail = s.getUint32(IoUring.sq.sqeTail, true);
    const cqRingPtr = ptr(IoUring.cq.ringPtr);
    const cqRingSz = s.getUint32(IoUring.cq.ringSz, true);
    this.#cqRing = new Uint32Array(_view(cqRingPtr, cqRingSz & ~3));
    this.#cqHead = Number(ptr(IoUring.cq.khead) - cqRingPtr) / 4;
    this.#cqTail = Number(ptr(IoUring.cq.ktail) - cqRingPtr) / 4;
    this.#cqMask = s.getUint32(IoUring.cq.ringMask, true);
    const cqesOff = Number(ptr(IoUring.cq.cqes) - cqRingPtr);
    this.#cqes = new DataView(this.#cqRing.buffer, cqesOff, cqRingSz - cqesOff);
  }
  /**
   * Creates a ring. Throws `PerCoreWalError` "Unsupported" when io_uring is refused, saying why
   * and what to do.
   */
  static create(entries) {
    const lib4 = liburing();
    const mem = allocAligned(IoUring.size + IoUringParams.size + 8, 64);
    const ring = Deno.UnsafePointer.create(mem.address);
    const params = Deno.UnsafePointer.create(mem.address + BigInt(IoUring.size));
    const pview = new DataView(mem.bytes.buffer, IoUring.size, IoUringParams.size);
    pview.setUint32(IoUringParams.flags, IORING_SETUP_SINGLE_ISSUER, true);
    let rc = lib4.io_uring_queue_init_params(entries, ring, params);
    if (rc === -Errno.EINVAL) {
      mem.bytes.fill(0);
      rc = lib4.io_uring_queue_init_params(entries, ring, params);
    }
    if (rc < 0) {
      freeAligned(mem);
      throw setupError(-rc);
    }
    try {
      return new _Ring(mem, entries);
    } catch (e) {
      lib4.io_uring_queue_exit(ring);
      freeAligned(mem);
      throw e;
    }
  }
  /** The ring's `struct io_uring` pointer. */
  get pointer() {
    return Deno.UnsafePointer.create(this.mem.address);
  }
  /** Reads a field of `struct io_uring` (for the layout test). */
  structU32(offset) {
    return this.#struct.getUint32(offset, true);
  }
  /** Free submission slots. */
  get sqSpace() {
    return this.entries - (this.#sqeTail - Atomics.load(this.#sqRing, this.#sqHead) >>> 0);
  }
  /**
   * Fills the next SQE. The caller checked {@linkcode sqSpace}. `addr` is a buffer address.
   */
  prep(opcode, flags, fd, offset, addr, len, rwFlags, userData) {
    const v = this.#sqes;
    const p = (this.#sqeTail & this.#sqMask) * Sqe.size;
    for (let i = 0; i < Sqe.size; i += 8) v.setBigUint64(p + i, 0n);
    v.setUint8(p + Sqe.opcode, opcode);
    v.setUint8(p + Sqe.flags, flags);
    v.setInt32(p + Sqe.fd, fd, true);
    v.setUint32(p + Sqe.off, offset % TWO323, true);
    v.setUint32(p + Sqe.off + 4, Math.floor(offset / TWO323), true);
    v.setBigUint64(p + Sqe.addr, addr, true);
    v.setUint32(p + Sqe.len, len, true);
    v.setUint32(p + Sqe.rwFlags, rwFlags, true);
    v.setUint32(p + Sqe.userData, userData, true);
    this.#sqeTail = this.#sqeTail + 1 >>> 0;
  }
  /** Submits the filled SQEs (liburing publishes `sqe_tail` to the kernel). */
  submit() {
    this.#struct.setUint32(IoUring.sq.sqeTail, this.#sqeTail, true);
    let rc;
    do
      rc = liburing().io_uring_submit(this.pointer);
    while (rc === -Errno.EINTR);
    return rc;
  }
  /** Whether a completion is waiting to be reaped (reads the CQ ring, no system call). */
  get cqReady() {
    return Atomics.load(this.#cqRing, this.#cqTail) !== this.#cqRing[this.#cqHead];
  }
  /** Calls `onCqe(userData, res)` for every completion available now; returns how many. */
  reap(onCqe) {
    const head = this.#cqRing[this.#cqHead];
    const tail = Atomics.load(this.#cqRing, this.#cqTail);
    let h = head;
    const v = this.#cqes;
    while (h !== tail) {
      const p = (h & this.#cqMask) * 16;
      const userData = v.getUint32(p, true);
      const res = v.getInt32(p + 8, true);
      h = h + 1 >>> 0;
      Atomics.store(this.#cqRing, this.#cqHead, h);
      onCqe(userData, res);
    }
    return h - head >>> 0;
  }
  /** Blocks until at least one completion is available (submitting what is queued). */
  waitBlocking() {
    this.#struct.setUint32(IoUring.sq.sqeTail, this.#sqeTail, true);
    let rc;
    do
      rc = liburing().io_uring_submit_and_wait(this.pointer, 1);
    while (rc === -Errno.EINTR);
    if (rc < 0) throw errnoError(-rc, "io_uring_submit_and_wait");
  }
  /**
   * Whether {@linkcode wait} can be used: before Linux 5.11 (no `IORING_FEAT_EXT_ARG`) liburing
   * would take an SQE for the timeout behind this class's back.
   */
  get canWait() {
    return (this.features & IORING_FEAT_EXT_ARG) !== 0;
  }
  /**
   * Blocks until a completion is available or `timeoutMs` passes (submits nothing); false if
   * it timed out. Only where {@linkcode canWait}.
   */
  wait(timeoutMs) {
    const ns = Math.max(0, Math.round(timeoutMs * 1e6));
    this.#ts[0] = BigInt(Math.floor(ns / 1e9));
    this.#ts[1] = BigInt(ns % 1e9);
    let rc;
    do {
      rc = liburing().io_uring_wait_cqes(this.pointer, this.#cqePointer, 1, this.#tsPointer, null);
    } while (rc === -Errno.EINTR);
    if (rc === -Errno.ETIME) return false;
    if (rc < 0) throw errnoError(-rc, "io_uring_wait_cqes");
    return true;
  }
  /** Has the kernel post to `fd` for every completion. */
  registerEventfd(fd) {
    check(liburing().io_uring_register_eventfd(this.pointer, fd), "io_uring_register_eventfd");
  }
  /** Tears the ring down. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    liburing().io_uring_queue_exit(this.pointer);
    freeAligned(this.mem);
  }
};
function setupError(errno) {
  const name = errnoName(errno);
  const why = {
    EPERM: `io_uring is disabled (sysctl kernel.io_uring_disabled) or blocked by a seccomp profile (Docker's default since 25): allow io_uring_setup, or use backend "sync"`,
    ENOSYS: 'the kernel has no io_uring (Linux 5.6+ needed), or a sandbox hides it: use backend "sync"',
    ENOMEM: "not enough locked memory for the ring (raise `ulimit -l`, or lower ringEntries)",
    EINVAL: "the kernel refused the ring parameters (ringEntries too large?)"
  };
  return new PerCoreWalError("Unsupported", `Cannot create an io_uring ring: io_uring_setup failed with ${name}: ${why[name] ?? "see errno"}`, {
    errno: name,
    operation: "io_uring_setup"
  });
}

// src/io/uring.ts
var DEFAULT_COMPLETION_SPIN_US = 200;
var BELL_ID = 0;
var SPIN_BACKOFF = 16;
var UringBackend = class {
  /** This is the io_uring backend. */
  kind = "io_uring";
  #ring;
  #efd;
  #efdBuf = new Uint8Array(8);
  #waiting;
  #slots = /* @__PURE__ */ new Map();
  #nextId = 1;
  #backlog = [];
  #spinMs;
  #spinStop;
  #spinSkip = 0;
  /** Chains with SQEs in flight. */
  #chains = 0;
  /** Completions found by polling the ring (the eventfd read was not needed). */
  spinHits = 0;
  /** Polls that timed out and fell back to the eventfd. */
  spinMisses = 0;
  /** Submissions that returned -EAGAIN or -EBUSY and were retried. */
  submitRetries = 0;
  #buffers = /* @__PURE__ */ new Map();
  #closed = false;
  #retry;
  #lazy;
  #ownerIdle = true;
  /** A read of the bell eventfd is in flight (see waitIdle). */
  #bellArmed = false;
  /** The bell read failed: waitIdle is unavailable from now on. */
  #bellBroken = false;
  #bellBuf = new Uint8Array(8);
  /** Where the bell's read lands (the buffer does not move). */
  #bellAddr;
  /** Creates the ring and its eventfd. Throws "Unsupported" if io_uring cannot be used. */
  constructor(options) {
    this.#ring = Ring.create(options.ringEntries);
    this.#bellAddr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#bellBuf)));
    const spinUs = options.completionSpinUs ?? DEFAULT_COMPLETION_SPIN_US;
    if (!Number.isFinite(spinUs) || spinUs < 0 || spinUs > 1e6) {
      throw new RangeError(`completionSpinUs must be 0..1000000 microseconds, got ${spinUs}`);
    }
    this.#spinMs = spinUs / 1e3;
    this.#spinStop = options.completionSpinStop;
    this.#lazy = options.lazyCompletionWait ?? false;
    const efd = libc().eventfd(0, EFD_CLOEXEC);
    if (efd < 0) {
      this.#ring.close();
      throw errnoError(-lastErrno(), "eventfd");
    }
    this.#efd = efd;
    try {
      this.#ring.registerEventfd(efd);
    } catch (e) {
      libc().close(efd);
      this.#ring.close();
      throw e;
    }
  }
  /** The ring (for tests of the layout). */
  get ring() {
    return this.#ring;
  }
  openFile(path, o) {
    const flags = O.RDWR | O.CLOEXEC | (o.createNew ? O.CREAT | O.EXCL : 0) | (o.direct ? O.DIRECT : 0) | (o.dsync ? O.DSYNC : 0);
    const fd = libc().open(cString(path), flags, o.mode);
    if (fd < 0) throw errnoError(-lastErrno(), "open", {
      path
    });
    return {
      path,
      fd
    };
  }
  allocate(file, length) {
    const f = file;
    if (libc().fallocate(f.fd, 0, 0n, BigInt(length)) < 0) {
      const errno = -lastErrno();
      if (errno !== 95) throw errnoError(errno, "fallocate", {
        path: f.path
      });
      return false;
    }
    return true;
  }
  writeParts(file, parts, sync) {
    if (this.#closed) {
      return Promise.reject(new PerCoreWalError("Closed", "io_uring backend is closed"));
    }
    return new Promise((resolve, reject) => {
      const chain = {
        file,
        parts,
        done: parts.map(() => 0),
        sync,
        outstanding: 0,
        resubmit: false,
        canceled: false,
        synced: false,
        resolve,
        reject
      };
      this.#enqueue(chain);
    });
  }
  #enqueue(chain) {
    if (this.#backlog.length > 0 || !this.#fill(chain)) this.#backlog.push(chain);
    this.#submit();
  }
  /** Fills the SQEs of what is left of a chain; false if the ring has no room for all. */
  #fill(c) {
    let need = c.sync === true ? 1 : 0;
    const rwFlags = c.sync === "dsync" ? RWF_DSYNC : 0;
    for (let i = 0; i < c.parts.length; i++) if (c.done[i] < c.parts[i].data.length) need++;
    if (need > this.#ring.sqSpace) return false;
    c.resubmit = false;
    c.canceled = false;
    c.outstanding = need;
    this.#chains++;
    let left = need;
    for (let i = 0; i < c.parts.length; i++) {
      const p = c.parts[i];
      const done = c.done[i];
      if (done >= p.data.length) continue;
      const len = this.writeLength(p.data.length - done);
      const id = this.#id();
      this.#slots.set(id, {
        chain: c,
        kind: "write",
        part: i,
        len
      });
      const addr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(p.data))) + BigInt(done);
      this.#ring.prep(Op.WRITE, --left > 0 ? IOSQE_IO_LINK : 0, c.file.fd, p.offset + done, addr, len, rwFlags, id);
    }
    if (c.sync === true) {
      const id = this.#id();
      this.#slots.set(id, {
        chain: c,
        kind: "fsync",
        part: -1,
        len: 0
      });
      this.#ring.prep(Op.FSYNC, 0, c.file.fd, 0, 0n, 0, IORING_FSYNC_DATASYNC, id);
    }
    return true;
  }
  /**
   * How many of the `remaining` bytes of a write part one SQE asks for: all of them. A seam for
   * fault injection (`FaultyUringBackend` asks for less, so that the kernel writes short).
   */
  writeLength(remaining) {
    return remaining;
  }
  /**
   * `io_uring_submit`: what the kernel returned (`-errno` on failure). A seam for fault injection
   * (`FaultyUringBackend` reports -EAGAIN without submitting).
   */
  submitQueued() {
    return this.#ring.submit();
  }
  #id() {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 2147483647 ? 1 : this.#nextId + 1;
    return id;
  }
  #submit() {
    const rc = this.submitQueued();
    if (!this.#submitted(rc)) return;
    this.#spin();
    this.#reap();
    this.#wait();
  }
  /**
   * Handles what `io_uring_submit` returned: on EAGAIN or EBUSY (the kernel is short of
   * resources) the SQEs stay queued and are submitted again shortly; any other error fails
   * everything in flight (the SQEs may not have reached the kernel; nothing is retried).
   * Returns false after such an error.
   */
  #submitted(rc) {
    if (rc === -Errno.EAGAIN || rc === -16) {
      this.submitRetries++;
      this.#retry ??= setTimeout(() => {
        this.#retry = void 0;
        if (!this.#closed) this.#submit();
      }, 1);
    } else if (rc < 0) {
      this.#failAll(errnoError(-rc, "io_uring_submit"));
      return false;
    }
    return true;
  }
  /**
   * Polls the completion ring for a bounded time when one durable chain (ending in an fdatasync,
   * or of durable writes) is all that is in flight: someone awaits that sync, and a fast disk
   * completes it sooner than the eventfd read (a blocking-pool thread, a wake-up and a promise)
   * would notice. Runs on the owner thread and only reads the CQ tail; never while idle, never
   * with other work queued.
   */
  #spin() {
    if (this.#spinMs <= 0 || this.#chains !== 1 || this.#backlog.length > 0) return;
    let sync = false;
    for (const s of this.#slots.values()) {
      if (s.kind === "fsync" || s.chain.sync === "dsync") sync = true;
    }
    if (!sync) return;
    if (this.#spinSkip > 0) {
      this.#spinSkip--;
      return;
    }
    const ring = this.#ring;
    const stop = this.#spinStop;
    const end = performance.now() + this.#spinMs;
    while (this.#chains > 0) {
      if (ring.cqReady) this.#reap();
      else if (stop !== void 0 && stop()) return;
      else if (performance.now() >= end) {
        this.spinMisses++;
        this.#spinSkip = SPIN_BACKOFF;
        return;
      }
    }
    this.spinHits++;
  }
  #failAll(err) {
    const chains = new Set([
      ...this.#slots.values()
    ].map((s) => s.chain));
    this.#slots.clear();
    this.#chains = 0;
    for (const c of chains) c.reject(err);
    for (const c of this.#backlog.splice(0)) c.reject(err);
  }
  /**
   * Blocks this thread until a completion arrives, `bell` (an eventfd) is written or
   * `timeoutMs` passes, then handles the completions there. A read of the bell stays in flight
   * between calls. For an owner with nothing else to do meanwhile (a core Worker, which its
   * producers wake through the bell): one kernel wake-up instead of a thread-pool read and an
   * event-loop turn.
   */
  waitIdle(bell, timeoutMs) {
    const ring = this.#ring;
    if (this.#closed || this.#bellBroken || !ring.canWait) return "unavailable";
    let ms = this.#retry !== void 0 ? Math.min(timeoutMs, 1) : timeoutMs;
    if (!this.#bellArmed) {
      if (ring.sqSpace > 0) {
        this.#bellArmed = true;
        ring.prep(Op.READ, 0, bell, 0, this.#bellAddr, 8, 0, BELL_ID);
        if (!this.#submitted(ring.submit())) return "unavailable";
      } else {
        ms = Math.min(ms, 1);
      }
    }
    const woken = ring.cqReady || ring.wait(ms);
    this.pollCompletions();
    return woken ? "woken" : "timeout";
  }
  setOwnerIdle(idle) {
    this.#ownerIdle = idle;
    if (idle) {
      this.pollCompletions();
      this.#wait();
    }
  }
  /** Handles the completions already in the CQ ring (no system call when there are none). */
  pollCompletions() {
    if (!this.#closed && this.#ring.cqReady) {
      this.#reap();
      if (this.#backlog.length > 0) this.#submit();
    }
  }
  /** Processes completions and refills from the backlog. */
  #reap() {
    this.#ring.reap((id, res) => this.#complete(id, res));
    while (this.#backlog.length > 0 && this.#fill(this.#backlog[0])) {
      this.#backlog.shift();
      const rc = this.#ring.submit();
      if (rc < 0) {
        this.#submitted(rc);
        break;
      }
    }
  }
  #complete(id, res) {
    if (id === BELL_ID) {
      this.#bellArmed = false;
      if (res !== 8) this.#bellBroken = true;
      return;
    }
    const slot = this.#slots.get(id);
    if (slot === void 0) return;
    this.#slots.delete(id);
    const c = slot.chain;
    c.outstanding--;
    if (slot.kind === "write") {
      if (res >= 0) {
        c.done[slot.part] += res;
        if (res < slot.len) c.resubmit = true;
      } else if (res === -Errno.EAGAIN || res === -Errno.EINTR) {
        c.resubmit = true;
      } else if (res === -Errno.ECANCELED) {
        c.canceled = true;
      } else {
        const part = c.parts[slot.part];
        c.error ??= errnoError(-res, "write", {
          path: c.file.path,
          offset: part.offset + c.done[slot.part]
        });
      }
    } else if (res === 0) {
      c.synced = true;
    } else if (res === -Errno.ECANCELED) {
      c.canceled = true;
    } else {
      c.error ??= errnoError(-res, "fdatasync", {
        path: c.file.path
      });
    }
    if (c.outstanding > 0) return;
    this.#chains--;
    if (c.canceled && !c.resubmit) {
      c.error ??= errnoError(Errno.ECANCELED, "write", {
        path: c.file.path
      });
    }
    if (c.error !== void 0) return c.reject(c.error);
    const complete = c.parts.every((p, i) => c.done[i] >= p.data.length);
    if (complete && (c.sync !== true || c.synced)) return c.resolve();
    c.resubmit = false;
    this.#backlog.unshift(c);
  }
  /** Keeps one eventfd read pending while operations are in flight. */
  #wait() {
    if (this.#waiting !== void 0 || this.#slots.size === 0 && this.#backlog.length === 0) {
      return;
    }
    if (this.#lazy && !this.#ownerIdle) return;
    this.#waiting = libc().read_blocking(this.#efd, this.#efdBuf, 8n).then(() => {
      this.#waiting = void 0;
      if (this.#closed) return;
      this.#reap();
      if (this.#backlog.length > 0) this.#submit();
      else this.#wait();
    });
  }
  readAt(file, into, offset) {
    const f = file;
    const n = Number(libc().pread(f.fd, into, BigInt(into.length), BigInt(offset)));
    if (n < 0) throw errnoError(-lastErrno(), "pread", {
      path: f.path,
      offset
    });
    return n;
  }
  truncate(file, length) {
    const f = file;
    if (libc().ftruncate(f.fd, BigInt(length)) < 0) {
      throw errnoError(-lastErrno(), "ftruncate", {
        path: f.path
      });
    }
  }
  closeFile(file) {
    const f = file;
    if (f.fd >= 0) libc().close(f.fd);
    f.fd = -1;
  }
  syncDirectory(path) {
    const fd = libc().open(cString(path), O.RDONLY | O.DIRECTORY | O.CLOEXEC, 0);
    if (fd < 0) throw errnoError(-lastErrno(), "open directory", {
      path
    });
    const rc = libc().fsync(fd) < 0 ? -lastErrno() : 0;
    libc().close(fd);
    if (rc < 0) throw errnoError(-rc, "fsync directory", {
      path
    });
  }
  allocBuffer(size) {
    const b = allocAligned(Math.ceil(size / 4096) * 4096, 4096);
    this.#buffers.set(b.bytes.buffer, b);
    return b.bytes.subarray(0, size);
  }
  freeBuffer(buffer) {
    const b = this.#buffers.get(buffer.buffer);
    if (b === void 0) return;
    this.#buffers.delete(buffer.buffer);
    freeAligned(b);
  }
  supportsDirect(dir) {
    const probe = `${dir}/.percore-odirect-probe-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const fd = libc().open(cString(probe), O.RDWR | O.CREAT | O.DIRECT | O.CLOEXEC, 384);
    if (fd >= 0) libc().close(fd);
    if (fd >= 0) removePath(probe);
    return fd >= 0;
  }
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(this.#efd, one, 8n);
    await this.#waiting;
    libc().close(this.#efd);
    this.#ring.close();
    for (const b of this.#buffers.values()) freeAligned(b);
    this.#buffers.clear();
  }
};

// src/io/choose.ts
function createBackend(o, completionSpinStop, lazyCompletionWait = false) {
  if (o.backend === "sync") return {
    backend: new SyncBackend()
  };
  try {
    return {
      backend: new UringBackend({
        ringEntries: o.ringEntries,
        completionSpinStop,
        lazyCompletionWait
      })
    };
  } catch (e) {
    if (o.backend === "io_uring" || !(e instanceof PerCoreWalError)) throw e;
    return {
      backend: new SyncBackend(),
      fallbackReason: e.message
    };
  }
}
function preloadNative() {
  if (Deno.permissions.querySync({
    name: "ffi"
  }).state !== "granted") return;
  for (const load of [
    libc,
    liburing,
    enableNativeCrc32c
  ]) {
    try {
      load();
    } catch {
    }
  }
}

// src/crash_tail.ts
function asideName(path) {
  const stamp = (/* @__PURE__ */ new Date()).toISOString().replace(/[:.]/g, "-");
  for (let i = 0; ; i++) {
    const name = `${path}.damaged-${stamp}${i === 0 ? "" : `-${i}`}`;
    if (lstatIfExists(name) === void 0) return name;
  }
}
function setTailAside(dir, begin, later) {
  const aside = [];
  const move = (path) => {
    const to = asideName(path);
    renamePath(path, to);
    aside.push(to);
  };
  for (const s of [
    ...later
  ].reverse()) move(s.path);
  if (begin.offset === 0) move(begin.path);
  if (aside.length > 0) syncDirectory(dir);
  if (begin.offset > 0) truncateFile(begin.path, begin.offset);
  return aside;
}

// src/damage_table.ts
var _after = (f) => f.validAt === void 0 ? "" : `, followed by a valid record at offset ${f.validAt}`;
var _v2 = (f) => f.hasHeader && f.nonZero && f.crashShaped;
var _proof = (f) => {
  const later = f.isLast || !f.laterKnown ? 0 : f.claimLater ?? 0;
  return f.claimHere > later ? f.claimHere : later;
};
var _v1 = (f) => f.hasHeader && f.nonZero && !f.crashShaped;
var _zeroHeader = (f) => !f.hasHeader && f.nonZero;
var _unclaimedStart = (f) => f.expectedFirst !== void 0 && f.laterKnown && (f.claimLater ?? 0) < f.expectedFirst;
var DAMAGE_ROWS = [
  {
    name: "zeros to the end",
    when: (f) => !f.nonZero,
    then: () => ({
      kind: "end",
      row: "zeros to the end"
    })
  },
  {
    name: "v2: a batch marker claims the lost sequence",
    when: (f) => _v2(f) && _proof(f) >= f.missing,
    then: (f) => ({
      kind: "corrupted",
      row: "v2: a batch marker claims the lost sequence",
      offset: f.at,
      reason: `${f.what}${_after(f)}; a batch marker${f.claimHere >= f.missing ? "" : " in a later segment"} says records through sequence ${_proof(f)} were acknowledged (sequence ${f.missing} is lost)`,
      code: f.code,
      resumeAt: f.validAt
    })
  },
  {
    name: "v2: unclaimed, not the last segment, later segments unknown",
    when: (f) => _v2(f) && _proof(f) < f.missing && !f.isLast && !f.laterKnown,
    then: (f) => ({
      kind: "corrupted",
      row: "v2: unclaimed, not the last segment, later segments unknown",
      offset: f.at,
      reason: `${f.what} in a segment that is not the core's last`,
      code: f.code,
      resumeAt: f.validAt
    })
  },
  {
    name: "v2: unclaimed crash tail",
    when: (f) => _v2(f) && _proof(f) < f.missing && (f.isLast || f.laterKnown),
    then: (f) => ({
      kind: "torn",
      row: "v2: unclaimed crash tail",
      offset: f.at,
      reason: `${f.what}${f.validAt === void 0 ? "" : ", unacknowledged batches follow"}`
    })
  },
  {
    name: "a valid record follows the damage",
    when: (f) => _v1(f) && f.validAt !== void 0,
    then: (f) => ({
      kind: "corrupted",
      row: "a valid record follows the damage",
      offset: f.at,
      reason: `${f.what}${_after(f)}`,
      code: f.code,
      resumeAt: f.validAt
    })
  },
  {
    name: "damage in a segment that is not the last",
    when: (f) => _v1(f) && f.validAt === void 0 && !f.isLast,
    then: (f) => ({
      kind: "corrupted",
      row: "damage in a segment that is not the last",
      offset: f.at,
      reason: `${f.what} in a segment that is not the core's last`,
      code: f.code
    })
  },
  {
    name: "torn last record",
    when: (f) => _v1(f) && f.validAt === void 0 && f.isLast,
    then: (f) => ({
      kind: "torn",
      row: "torn last record",
      offset: f.at,
      reason: f.what
    })
  },
  {
    name: "zero header, last segment",
    when: (f) => _zeroHeader(f) && f.isLast,
    then: () => ({
      kind: "torn",
      row: "zero header, last segment",
      offset: 0,
      // The header block is written in the chain of the segment's first batch: a segment
      // without it never had a batch acknowledged. Its records cannot be checked (the salt is
      // in the header), so this is also what a destroyed header of a last segment looks like.
      reason: "zero segment header followed by data (its first batch never completed)"
    })
  },
  {
    name: "zero header, no later marker claims it",
    when: (f) => _zeroHeader(f) && !f.isLast && _unclaimedStart(f),
    then: () => ({
      kind: "torn",
      row: "zero header, no later marker claims it",
      offset: 0,
      reason: "zero segment header followed by data (its first batch never completed; no later batch marker claims it)"
    })
  },
  {
    name: "zero header, claimed or unknown",
    when: (f) => _zeroHeader(f) && !f.isLast && !_unclaimedStart(f),
    then: () => ({
      kind: "corrupted",
      row: "zero header, claimed or unknown",
      offset: 0,
      reason: "zero segment header followed by data",
      code: "Corrupted"
    })
  }
];
function damageNeedsClaim(f) {
  if (!f.nonZero || f.isLast || !f.laterKnown) return false;
  if (f.hasHeader) return f.crashShaped && f.claimHere < f.missing;
  return f.expectedFirst !== void 0;
}
function decideDamage(f) {
  return _match(DAMAGE_ROWS, f).then(f);
}
var _gapUnclaimed = (f) => f.hasHeader && f.expected !== void 0 && f.version >= 2 && f.firstSequence > f.expected && (f.claimFromHere ?? 0) < f.expected;
var _startMissing = (f) => f.isFirst && f.startSegment !== void 0 && f.index !== f.startSegment;
var _noBeginning = (f) => f.hasHeader && f.isFirst && f.startSegment === void 0 && f.requireBeginning && f.firstSequence !== 1;
function _gap(row, reason, foreign = false) {
  return {
    kind: "corrupt",
    row,
    code: "Corrupted",
    offset: 0,
    reason,
    gap: true,
    foreign
  };
}
var START_ROWS = [
  {
    name: "header of another core or index",
    when: (f) => f.hasHeader && !f.identityMatches,
    then: (f) => _gap("header of another core or index", `its header says core ${f.headerCoreId} segment ${f.headerSegment}`, true)
  },
  {
    name: "the checkpoint's start segment is missing",
    when: (f) => (!f.hasHeader || f.identityMatches) && _startMissing(f),
    then: (f) => _gap("the checkpoint's start segment is missing", `replay starts in segment ${f.startSegment} (a checkpoint's barrier), which is missing`)
  },
  {
    name: "the log's beginning is missing",
    when: (f) => f.identityMatches && _noBeginning(f),
    then: (f) => _gap("the log's beginning is missing", `the log begins at sequence ${f.firstSequence} and no valid checkpoint covers the sequences before it (segments missing, or retired by a checkpoint that is not usable)`)
  },
  {
    name: "v2: unclaimed gap at a rotation",
    when: (f) => f.identityMatches && !_startMissing(f) && !_noBeginning(f) && _gapUnclaimed(f),
    then: (f) => ({
      kind: "tail",
      row: "v2: unclaimed gap at a rotation",
      offset: 0,
      reason: `it starts at sequence ${f.firstSequence} but the previous segment ends at ${f.expected - 1}, and no batch marker claims sequence ${f.expected} (the batches of a rotation were in flight at a crash)`
    })
  },
  {
    name: "a segment is missing",
    when: (f) => f.hasHeader && f.identityMatches && !_startMissing(f) && !_noBeginning(f) && !_gapUnclaimed(f) && f.expected !== void 0 && f.firstSequence !== f.expected,
    then: (f) => _gap("a segment is missing", `it starts at sequence ${f.firstSequence} but the previous segment ends at ${f.expected - 1} (a segment is missing)`)
  },
  {
    name: "continues the log",
    when: (f) => f.hasHeader && f.identityMatches && !_startMissing(f) && !_noBeginning(f) && !_gapUnclaimed(f) && (f.expected === void 0 || f.firstSequence === f.expected),
    then: () => ({
      kind: "continue",
      row: "continues the log"
    })
  },
  {
    name: "no header: its records decide",
    when: (f) => !f.hasHeader && !_startMissing(f),
    then: () => ({
      kind: "continue",
      row: "no header: its records decide"
    })
  }
];
function startNeedsClaim(f) {
  return f.hasHeader && f.identityMatches && !_startMissing(f) && !_noBeginning(f) && f.expected !== void 0 && f.version >= 2 && f.firstSequence > f.expected;
}
function decideSegmentStart(f) {
  return _match(START_ROWS, f).then(f);
}
var _allZero = (f) => !f.hasHeader && f.end === "end" && !f.truncated;
var END_ROWS = [
  {
    name: "empty segment before a laid-out one",
    when: (f) => !f.hasHeader && f.end === "end" && f.truncated,
    then: () => ({
      kind: "corrupt",
      row: "empty segment before a laid-out one",
      code: "Corrupted",
      offset: 0,
      reason: "the segment is empty (0 bytes) but a later segment was laid out after it: it was truncated (a segment is durable at its full size before the next one is created), and its records are lost",
      gap: false,
      foreign: false
    })
  },
  {
    name: "all-zero segment, no later marker claims it",
    when: (f) => _allZero(f) && f.expected !== void 0 && (f.claimLater ?? 0) < f.expected,
    then: (f) => ({
      kind: "tail",
      row: "all-zero segment, no later marker claims it",
      offset: 0,
      reason: `an all-zero segment before started ones (its batches never reached the disk), and no batch marker claims sequence ${f.expected}`
    })
  },
  {
    name: "all-zero segment, claimed or unknown",
    when: (f) => _allZero(f) && (f.expected === void 0 || (f.claimLater ?? 0) >= f.expected),
    then: () => ({
      kind: "corrupt",
      row: "all-zero segment, claimed or unknown",
      code: "Corrupted",
      offset: 0,
      reason: "its header is zero",
      gap: true,
      foreign: false
    })
  },
  {
    name: "corrupted",
    when: (f) => f.end === "corrupted",
    then: (f) => ({
      kind: "corrupt",
      row: "corrupted",
      code: f.code,
      offset: f.offset,
      reason: f.reason,
      gap: false,
      foreign: false
    })
  },
  {
    name: "torn",
    when: (f) => f.end === "torn",
    then: (f) => ({
      kind: "tail",
      row: "torn",
      offset: f.offset,
      reason: f.reason
    })
  },
  {
    name: "clean end",
    when: (f) => f.hasHeader && f.end === "end",
    then: () => ({
      kind: "continue",
      row: "clean end"
    })
  }
];
function endNeedsClaim(f) {
  return _allZero(f) && f.expected !== void 0;
}
function decideSegmentEnd(f) {
  return _match(END_ROWS, f).then(f);
}
var TRAILING_ROWS = [
  {
    name: "data: started",
    when: (f) => f.content === "data",
    then: () => ({
      kind: "started",
      row: "data: started"
    })
  },
  {
    name: "prepared ahead, never started",
    when: (f) => f.content === "zeros",
    then: () => ({
      kind: "unstarted",
      row: "prepared ahead, never started"
    })
  },
  {
    // A crash while creating it, or a power loss before its size was durable.
    name: "empty, nothing laid out after it (a crash while creating it)",
    when: (f) => f.content === "empty" && !f.laterLaidOut,
    then: () => ({
      kind: "unstarted",
      row: "empty, nothing laid out after it (a crash while creating it)"
    })
  },
  {
    // The next segment is created only once this one's preparation is durable (core_log.ts,
    // #rotate): this one had its full size (see `SegmentEndFacts.truncated`).
    name: "empty before a laid-out segment (truncated)",
    when: (f) => f.content === "empty" && f.laterLaidOut,
    then: () => ({
      kind: "truncated",
      row: "empty before a laid-out segment (truncated)"
    })
  }
];
function decideTrailing(f) {
  return _match(TRAILING_ROWS, f).then(f);
}
function _match(rows, f) {
  const hits = rows.filter((r) => r.when(f));
  assert(hits.length === 1, `exactly one row of the damage table matches (${hits.map((r) => r.name).join(", ")})`);
  return hits[0];
}
function startFacts(header, coreId, index, previousLast, isFirst, first = {}) {
  return {
    hasHeader: header !== void 0,
    identityMatches: header === void 0 || header.coreId === coreId && header.segmentIndex === index,
    headerCoreId: header?.coreId ?? coreId,
    headerSegment: header?.segmentIndex ?? index,
    version: header?.version ?? 0,
    firstSequence: header?.firstSequence ?? 0,
    expected: previousLast === void 0 ? void 0 : previousLast + 1,
    startSegment: isFirst ? first.startSegment : void 0,
    index,
    requireBeginning: first.requireBeginning ?? false,
    isFirst
  };
}

// src/open_recovery.ts
init_errors();

// src/read_window.ts
init_errors();
var CHUNK = 1024 * 1024;
var HEAD = 64 * 1024;
var ReadWindow = class {
  /** The buffer. */
  buf = _takeBuffer();
  /** A view of `buf`. */
  view = new DataView(this.buf.buffer);
  /** `buf` as 32-bit words (zero runs are skipped a word at a time). */
  words = new Uint32Array(this.buf.buffer);
  /** The file offset of `buf[0]`. */
  start = 0;
  /** The first file offset whose byte is in the buffer (the bytes before it are stale). */
  from = 0;
  /** How many bytes of `buf` hold file bytes. */
  length = 0;
  #file;
  #path;
  #sizeBytes;
  /** Whether to read ahead, and the read in flight: file bytes `[start, start + len)` at `HEAD`. */
  #readAhead;
  #ahead;
  /** Reads in flight into `buf` (it cannot be handed on at close while there are). */
  #reading = 0;
  /** The file's position when known (reads in sequence need no seek), else -1. */
  #filePos = -1;
  /** The buffer a read ahead goes to (the one not in use). */
  #spare;
  #closed = false;
  /** A window over `file` (`sizeBytes` long, named `path` in errors); it owns the file. */
  constructor(file, path, sizeBytes, readAhead) {
    this.#file = file;
    this.#path = path;
    this.#sizeBytes = sizeBytes;
    this.#readAhead = readAhead;
  }
  /**
   * Makes bytes `[pos, pos + n)` (or up to the end of the file) available in the buffer, and as
   * many after them as it holds. Returns whether the buffer changed (false: they were there).
   */
  async fill(pos, n) {
    const want = Math.min(n, this.#sizeBytes - pos);
    const end = this.start + this.length;
    if (pos >= this.from && pos + want <= end) return false;
    const ahead = this.#ahead;
    if (ahead !== void 0) {
      this.#ahead = void 0;
      try {
        await ahead.done;
      } catch (e) {
        if (!this.#closed) throw e;
      }
      if (this.#closed) throw this.#closedError();
      if (ahead.start === end && pos >= this.from && end - pos <= HEAD && pos + want <= ahead.start + ahead.len) {
        ahead.buf.set(this.buf.subarray(pos - this.start, this.length), HEAD - (end - pos));
        this.#use(ahead.buf);
        this.start = ahead.start - HEAD;
        this.from = pos;
        this.length = HEAD + ahead.len;
        this.#readNextAhead();
        return true;
      }
      this.#spare ??= ahead.buf;
    }
    await this.#read(pos, want);
    return true;
  }
  /** Reads from `pos` into the buffer (grown to hold `want` bytes if needed). */
  async #read(pos, want) {
    if (want > this.buf.length) {
      this.#use(new Uint8Array(Math.ceil(Math.max(want, this.buf.length * 2) / 4) * 4));
    }
    const len = Math.min(this.buf.length, this.#sizeBytes - pos);
    this.length = 0;
    const at = this.#filePos;
    this.#filePos = -1;
    if (this.#closed) throw this.#closedError();
    this.#reading++;
    try {
      this.#filePos = await readFull(this.#file, this.buf.subarray(0, len), pos, this.#path, at);
    } catch (e) {
      throw this.#closed ? this.#closedError() : e;
    } finally {
      this.#reading--;
    }
    this.start = this.from = pos;
    this.length = len;
    this.#readNextAhead();
  }
  #closedError() {
    return new PerCoreWalError("Closed", `Reader of "${this.#path}" is closed`);
  }
  /** Makes `buf` the buffer; the one it replaces becomes the spare (if of the usual size). */
  #use(buf) {
    if (this.buf.length === HEAD + CHUNK) this.#spare = this.buf;
    this.buf = buf;
    this.view = new DataView(buf.buffer);
    this.words = new Uint32Array(buf.buffer);
  }
  /** Starts reading the bytes after the buffer into the spare buffer, if reading ahead. */
  #readNextAhead() {
    const start = this.start + this.length;
    if (!this.#readAhead || this.#closed || start >= this.#sizeBytes) return;
    const buf = this.#spare ?? _takeBuffer();
    this.#spare = void 0;
    const len = Math.min(CHUNK, this.#sizeBytes - start);
    const at = this.#filePos;
    this.#filePos = -1;
    const done = readFull(this.#file, buf.subarray(HEAD, HEAD + len), start, this.#path, at).then((p) => void (this.#filePos = p));
    done.catch(() => {
    });
    this.#ahead = {
      start,
      len,
      buf,
      done
    };
  }
  /**
   * Closes the file. Idempotent. A read ahead in flight completes after it (its buffer is
   * dropped); `closeAsync()` waits for it.
   */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reading === 0) _giveBuffer(this.buf);
    if (this.#ahead === void 0 && this.#spare !== void 0) _giveBuffer(this.#spare);
    this.#ahead = void 0;
    this.#spare = void 0;
    this.length = 0;
    this.#file.close();
  }
  /** Waits for a read ahead in flight, then closes the file. Idempotent. */
  async closeAsync() {
    const ahead = this.#ahead;
    this.#ahead = void 0;
    if (ahead !== void 0 && !this.#closed) {
      await ahead.done.catch(() => {
      });
      this.#spare ??= ahead.buf;
    }
    this.close();
  }
};
async function readFull(file, into, offset, path, at = -1) {
  try {
    if (at !== offset) await file.seek(offset, Deno.SeekMode.Start);
    let n = 0;
    while (n < into.length) {
      const r = await file.read(into.subarray(n));
      if (r === null) {
        into.fill(0, n);
        break;
      }
      n += r;
    }
    return offset + n;
  } catch (e) {
    throw ioError(e, "read", path, offset);
  }
}
var _pool = [];
function _takeBuffer() {
  while (_pool.length > 0) {
    const buf = _pool.pop().deref();
    if (buf !== void 0) return buf;
  }
  return new Uint8Array(HEAD + CHUNK);
}
function _giveBuffer(buf) {
  if (buf.length !== HEAD + CHUNK || _pool.length >= 2) return;
  if (_pool.some((r) => r.deref() === buf)) return;
  _pool.push(new WeakRef(buf));
}

// src/zero_bytes.ts
function firstNonZeroWord(words, from, to) {
  let x = from;
  for (; x + 8 <= to; x += 8) {
    if ((words[x] | words[x + 1] | words[x + 2] | words[x + 3] | words[x + 4] | words[x + 5] | words[x + 6] | words[x + 7]) !== 0) {
      break;
    }
  }
  while (x < to && words[x] === 0) x++;
  return x;
}
function zeroRange(b, words, from, to) {
  let i = from;
  while (i < to && (i & 3) !== 0) if (b[i++] !== 0) return false;
  let x = i >> 2;
  const xEnd = to >> 2;
  let acc = 0;
  for (; x + 8 <= xEnd; x += 8) {
    acc = words[x] | words[x + 1] | words[x + 2] | words[x + 3] | words[x + 4] | words[x + 5] | words[x + 6] | words[x + 7];
    if (acc !== 0) return false;
  }
  for (; x < xEnd; x++) if (words[x] !== 0) return false;
  for (i = Math.max(i, xEnd << 2); i < to; i++) if (b[i] !== 0) return false;
  return true;
}
function isZero(b) {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

// src/reader_damage.ts
var SECTOR = 512;
async function classifyDamage(d, pos, reason, code, zeroStart = false) {
  const crashShaped = d.header !== void 0 && d.header.version >= 2 && await _crashShaped(d, pos);
  const { nonZero, validAt, claim } = await _scan(d, pos, crashShaped);
  const facts = {
    at: pos,
    what: zeroStart ? "zeros followed by non-zero bytes" : reason,
    code,
    hasHeader: d.header !== void 0,
    nonZero,
    crashShaped,
    validAt,
    isLast: d.isLast,
    laterKnown: d.hasLater,
    missing: d.expected,
    expectedFirst: d.expectedFirst,
    claimHere: claim
  };
  if (damageNeedsClaim(facts)) facts.claimLater = await d.laterClaim();
  const { row: _row, ...result } = decideDamage(facts);
  if (result.kind === "end") {
    return {
      result: {
        kind: "end",
        offset: pos,
        preallocatedBytes: d.fileSizeBytes - pos
      },
      claim: 0
    };
  }
  return {
    result,
    claim: crashShaped ? claim : 0
  };
}
async function _crashShaped(d, pos) {
  const w = d.bytes;
  const size = d.fileSizeBytes;
  await w.fill(pos, RECORD_HEADER_BYTES);
  const rel = pos - w.start;
  const zeroIn = (from, to) => {
    for (let s = from - from % SECTOR; s < to; s += SECTOR) {
      const lo = Math.max(s, from) - w.start;
      const hi = Math.min(s + SECTOR, to) - w.start;
      let zero = true;
      for (let i = lo; i < hi && zero; i++) zero = w.buf[i] === 0;
      if (zero) return true;
    }
    return false;
  };
  if (zeroIn(pos, Math.min(pos + 8, size))) return true;
  if (pos + RECORD_HEADER_BYTES > size) return false;
  const length = w.view.getUint32(rel + R_LENGTH, true);
  if (length < RECORD_HEADER_BYTES || length > d.decode.maxRecordBytes + 65535) return false;
  const pad = w.view.getUint16(rel + R_PAD, true);
  const end = Math.min(pos + length - (pad <= length - RECORD_HEADER_BYTES ? pad : 0), size);
  await w.fill(pos, end - pos);
  return zeroIn(pos, end);
}
async function _scan(d, from, all) {
  const w = d.bytes;
  let nonZero = false;
  let validAt;
  let claim = 0;
  const size = d.fileSizeBytes;
  let q = from;
  while (q < size) {
    if (q < w.from || q + Math.min(RECORD_HEADER_BYTES, size - q) > w.start + w.length) {
      await w.fill(q, RECORD_HEADER_BYTES);
    }
    const rel = q - w.start;
    const b = w.buf;
    if ((rel & 3) === 0 && rel + 12 <= w.length) {
      const u = w.words;
      const x = rel >> 2;
      if (u[x] === 0 && u[x + 1] === 0 && u[x + 2] === 0) {
        q += (firstNonZeroWord(u, x + 3, w.length >> 2) - 2 - x) * 4;
        continue;
      }
    }
    if (b[rel] !== 0) {
      nonZero = true;
      if (d.header === void 0) return {
        nonZero,
        claim
      };
    }
    if (q <= from || (b[rel + 4] | b[rel + 5] | b[rel + 6] | b[rel + 7]) === 0 || d.header === void 0 || !_recordCouldStart(d, rel, q)) {
      q++;
      continue;
    }
    const len = w.view.getUint32(rel + R_LENGTH, true);
    await w.fill(q, len);
    const at = q - w.start;
    const ok = checkRecord(w.buf, w.view, at, w.length, d.decode);
    if (ok.status !== "ok") {
      q++;
      continue;
    }
    nonZero = true;
    validAt ??= q;
    if (!all) return {
      nonZero,
      validAt,
      claim
    };
    if (w.buf[at + R_TYPE] === RecordType.batch) {
      claim = Math.max(claim, batchMarkerClaim(w.view, at));
    }
    q += ok.length;
  }
  return {
    nonZero,
    validAt,
    claim
  };
}
function _recordCouldStart(d, rel, q) {
  const w = d.bytes;
  if (rel + RECORD_HEADER_BYTES > w.length) return false;
  const b = w.buf;
  const v = w.view;
  if (b[rel + R_FLAGS] !== 0 || b[rel + R_TYPE] === 0 || b[rel + R_TYPE] > RecordType.batch) {
    return false;
  }
  if (v.getUint16(rel + R_CORE, true) !== d.decode.coreId) return false;
  const len = v.getUint32(rel + R_LENGTH, true);
  return len >= RECORD_HEADER_BYTES && len <= d.decode.maxRecordBytes + 65535 && q + len <= d.fileSizeBytes;
}

// src/segment_probes.ts
init_errors();

// src/segment_files.ts
init_errors();
var ZERO_CHECK_BYTES = 256 << 10;
function listCoreSegments(config, coreId) {
  const out = [];
  for (const e of readDirectory(config.baseDir)) {
    const p = config.parseSegmentName(e.name);
    if (p === void 0 || p.coreId !== coreId) continue;
    const path = `${config.baseDir}/${e.name}`;
    if (e.isSymlink) refuseSymlink(path, "Segment");
    const canonical = config.segmentPath(coreId, p.segment);
    if (path !== canonical) {
      throw new PerCoreWalError("Corrupted", `"${path}" is not a segment name of this WAL: it reads as segment ${p.segment} of core ${coreId}, whose name is "${canonical.slice(config.baseDir.length + 1)}"; move it out of the WAL directory`, {
        coreId,
        segment: path
      });
    }
    if (!e.isFile) refuseNonRegular(lstatPath(path), path, "Segment");
    out.push({
      index: p.segment,
      path
    });
  }
  return out.sort((a, b) => a.index - b.index);
}
function unstartedAtEnd(segs) {
  let laterLaidOut = false;
  let n = 0;
  for (let i = segs.length - 1; i >= 0; i--) {
    const path = segs[i].path;
    const zeros = isUnstartedSegment(path);
    const empty = zeros && isEmptyFile(path);
    const d = decideTrailing({
      content: empty ? "empty" : zeros ? "zeros" : "data",
      laterLaidOut
    });
    if (d.kind === "started") break;
    if (d.kind === "truncated") return 0;
    n++;
    laterLaidOut ||= !empty;
  }
  return n;
}
function anyLaidOut(paths) {
  return paths.some((p) => !isEmptyFile(p));
}
function isEmptyFile(path) {
  const info = lstatIfExists(path);
  if (info === void 0) return true;
  refuseNonRegular(info, path, "Segment");
  return info.size === 0;
}
function isUnstartedSegment(path) {
  let f;
  try {
    f = openRegularFile(path, "Segment");
  } catch (e) {
    if (isMissing(e)) return false;
    throw e;
  }
  using file = f;
  let buf = new Uint8Array(4096);
  let words = new Uint32Array(buf.buffer);
  while (true) {
    const n = readSome(file, buf, path);
    if (n === null) return true;
    if (!zeroRange(buf, words, 0, n)) return false;
    if (buf.length < ZERO_CHECK_BYTES) {
      buf = new Uint8Array(ZERO_CHECK_BYTES);
      words = new Uint32Array(buf.buffer);
    }
  }
}
function ensureDirectory(dir, options = {}) {
  const what = options.what ?? "WAL directory";
  try {
    if (!options.allowSymlinks) refuseSymlink(dir, what);
    if (!statPath(dir).isDirectory) {
      throw new PerCoreWalError("Io", `${what} "${dir}" is not a directory`, {
        errno: "ENOTDIR",
        segment: dir
      });
    }
  } catch (e) {
    if (!isMissing(e)) throw e;
    makeDirectory(dir, {
      recursive: true,
      mode: directoryMode(options.fileMode ?? 384)
    });
    const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) || "/" : ".";
    syncDirectory(parent);
  }
}
function refuseSymlink(path, what) {
  if (!lstatPath(path).isSymlink) return;
  let target = "?";
  try {
    target = readLink(path);
  } catch (e) {
    if (!(e instanceof PerCoreWalError)) throw e;
  }
  throw new PerCoreWalError("Unsafe", `${what} "${path}" is a symbolic link (to "${target}"): refused` + (what === "Segment" ? "; segments must be regular files" : " unless allowSymlinks is true"), {
    segment: path
  });
}

// src/segment_probes.ts
async function acknowledgedClaim(paths, maxRecordBytes) {
  let claim = 0;
  const started = paths.filter((p) => !isUnstartedSegment(p));
  for (const path of started) {
    using r = await PerCoreWalReader.open(path, {
      maxRecordBytes,
      isLastSegment: true
    });
    if (r.header === void 0) continue;
    let x = await r.readNext();
    while (x.kind === "entry") x = await r.readNext();
    claim = Math.max(claim, Number(r.acknowledgedClaim));
  }
  return claim;
}
async function decideStartOf(facts, fromHere, maxRecordBytes) {
  if (!startNeedsClaim(facts)) return decideSegmentStart(facts);
  const claim = await acknowledgedClaim(fromHere, maxRecordBytes);
  return decideSegmentStart({
    ...facts,
    claimFromHere: claim
  });
}
async function decideEndOf(hasHeader, r, expected, later, maxRecordBytes, path) {
  const zero = !hasHeader && r.kind === "end";
  const facts = {
    hasHeader,
    end: r.kind,
    offset: r.offset,
    reason: r.kind === "end" ? "" : r.reason,
    code: r.kind === "corrupted" ? r.code : "Corrupted",
    expected,
    truncated: zero && isEmptyFile(path) && anyLaidOut(later)
  };
  if (endNeedsClaim(facts)) {
    facts.claimLater = await acknowledgedClaim(later, maxRecordBytes);
  }
  return decideSegmentEnd(facts);
}

// src/reader.ts
init_errors();

// src/segment_message.ts
function segmentDamageMessage(verb, path, reason, offset) {
  const at = offset === void 0 ? "" : ` at offset ${offset}`;
  return `Cannot ${verb} segment "${path}"${at}: ${reason}`;
}

// src/reader.ts
var WINDOW = 64 * 1024;
var _SKIMMED = Object.freeze({
  coreId: -1,
  epoch: 0,
  sequence: 0,
  timestampNs: 0n,
  operation: Object.freeze({
    type: "delete",
    key: new Uint8Array(0)
  })
});
var PerCoreWalReader = class _PerCoreWalReader {
  /** The file read. */
  path;
  /** The segment header, or undefined for a preallocated segment that was never started. */
  header;
  /** The file's size. */
  fileSizeBytes;
  #ctx;
  #last;
  /** `liveEnd`: the records end where the bytes stop validating, nothing is classified. */
  #liveEnd;
  /** In {@linkcode skimToEnd}: records are checked and counted, no entry is built. */
  #skim = false;
  #later;
  #expectedFirst;
  /** The file's bytes; the six fields after it are its own, copied after each refill. */
  #bytes;
  #buf;
  #view;
  /** The file offset of `#buf[0]`. */
  #bufStart = 0;
  /** The first file offset whose byte is in the buffer (the bytes before it are stale). */
  #bufFrom = 0;
  #bufLen = 0;
  #claim = 0;
  #pos = SEGMENT_DATA_OFFSET;
  #done;
  #count = 0;
  #expected = 0;
  #lastEpoch = 0;
  #lastTs = -Infinity;
  #lastTimestampNs = 0n;
  /** The last timestamp decoded: its two words, and the bigint handed out for them. */
  #tsLo = -1;
  #tsHi = -1;
  #tsBig = 0n;
  #minEpoch = 0;
  #maxEpoch = 0;
  #closed = false;
  /** The copy of the buffer that decoded keys and values view (it is never written to). */
  #window;
  /** Salvage: the record after skipped damage sets the expected sequence. */
  #resync = false;
  #firstSeq;
  /**
   * The entries of an atomic batch record (format v3) not handed out yet: `#pos` stays at the
   * record until its last entry is out, then moves to `#batchEnd` (so the entries before the
   * last have length 0, and the last one the record's length).
   */
  #batch;
  #batchAt = 0;
  #batchEnd = 0;
  constructor(path, file, size, header, options) {
    this.path = path;
    this.#bytes = new ReadWindow(file, path, size, options.readAhead ?? false);
    this.#buf = this.#bytes.buf;
    this.#view = this.#bytes.view;
    this.fileSizeBytes = size;
    this.header = header;
    this.#last = options.isLastSegment ?? true;
    this.#liveEnd = options.liveEnd ?? false;
    this.#later = options.laterSegments;
    this.#expectedFirst = options.expectedFirstSequence;
    this.#ctx = {
      salt: header === void 0 ? 0 : saltState(header.salt),
      coreId: header?.coreId ?? 0,
      maxRecordBytes: options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
      version: header?.version ?? 1
    };
    if (header !== void 0) {
      this.#expected = options.startSequence ?? header.firstSequence;
      this.#pos = Math.max(SEGMENT_DATA_OFFSET, options.startOffset ?? SEGMENT_DATA_OFFSET);
      this.#lastEpoch = header.epoch;
      this.#minEpoch = this.#maxEpoch = header.epoch;
    }
  }
  /**
   * Opens a segment and validates its header. Throws `PerCoreWalError`: "SegmentNotFound",
   * "Unsafe" (a FIFO, socket, device or symbolic link in its place), "Io", or
   * "Corrupted"/"ChecksumMismatch"/"Unsupported" for a bad header.
   */
  static async open(path, options = {}) {
    path = toPath(path, "path");
    checkOptionKeys(options, "ReaderOptions");
    optionalSafeInteger(options.startSequence, "startSequence");
    optionalSafeInteger(options.expectedFirstSequence, "expectedFirstSequence");
    if (options.liveEnd !== void 0 && typeof options.liveEnd !== "boolean") {
      throw new TypeError(`liveEnd must be a boolean, got ${typeof options.liveEnd}`);
    }
    enableNativeCrc32c();
    let file;
    try {
      file = await openRegularFileAsync(path, "Segment");
    } catch (e) {
      if (isMissing(e)) {
        throw new PerCoreWalError("SegmentNotFound", `Segment "${path}" does not exist`, {
          segment: path,
          cause: e.cause ?? e
        });
      }
      throw e;
    }
    try {
      const size = Math.min((await file.stat()).size, options.limitOffset ?? Infinity);
      const head = new Uint8Array(Math.min(SEGMENT_DATA_OFFSET, size));
      await readFull(file, head, 0, path);
      const header = isZero(head) ? void 0 : decodeSegmentHeader(head, path);
      return new _PerCoreWalReader(path, file, size, header, options);
    } catch (e) {
      file.close();
      throw e instanceof PerCoreWalError ? e : ioError(e, "read", path);
    }
  }
  /** Returns the next record, or why there is none. After a non-entry result it repeats it. */
  async readNext() {
    while (true) {
      const r = await this.#readOne();
      if (r !== void 0) return r;
    }
  }
  async #readOne() {
    if (this.#closed) throw new PerCoreWalError("Closed", `Reader of "${this.path}" is closed`);
    if (this.#done !== void 0) return this.#done;
    if (this.#batch !== void 0) {
      const pos2 = this.#pos;
      const entry = this.#nextOfBatch();
      return {
        kind: "entry",
        entry,
        offset: pos2,
        length: this.#pos - pos2
      };
    }
    if (this.header === void 0) {
      if (this.#liveEnd) return this.#finish({
        kind: "end",
        offset: 0,
        preallocatedBytes: 0
      });
      return this.#finish(await this.#afterDamage(0, "segment header is zero", "Corrupted", true));
    }
    if (this.fileSizeBytes < SEGMENT_DATA_OFFSET) {
      return this.#finish({
        kind: "torn",
        offset: this.fileSizeBytes,
        reason: "header block cut short"
      });
    }
    const pos = this.#pos;
    await this.#ensure(pos, RECORD_HEADER_BYTES);
    let check2 = this.#check(pos);
    if (check2.status === "incomplete" && pos + check2.length <= this.fileSizeBytes) {
      await this.#ensure(pos, check2.length);
      check2 = this.#check(pos);
    }
    if (check2.status !== "ok" && this.#liveEnd) {
      return this.#finish({
        kind: "end",
        offset: pos,
        preallocatedBytes: 0
      });
    }
    switch (check2.status) {
      case "ok":
        return this.#entry(pos, check2.length);
      case "zero":
        return this.#finish(await this.#afterDamage(pos, "zeros", "Corrupted", true));
      case "incomplete":
        if (pos >= this.fileSizeBytes) {
          return this.#finish({
            kind: "end",
            offset: pos,
            preallocatedBytes: 0
          });
        }
        return this.#finish(await this.#afterDamage(pos, "record extends past the end of the file", "Corrupted"));
      case "bad":
        return this.#finish(await this.#afterDamage(pos, check2.reason, check2.code));
    }
  }
  /**
   * Reads up to `max` results: entries decoded without waiting while they are buffered, and the
   * result that ends the records (which comes last). For fast sequential scans.
   */
  async readBatch(max = 1024) {
    const out = [];
    while (out.length < max) {
      let fast = this.#fast();
      while (fast === null) fast = this.#fast();
      if (fast !== void 0) {
        out.push(fast);
        if (fast.kind !== "entry") break;
        continue;
      }
      const r = await this.readNext();
      out.push(r);
      if (r.kind !== "entry") break;
    }
    return out;
  }
  /**
   * Reads up to `max` entries into `entries`, with their offsets and lengths (padding included)
   * in `offsets` and `lengths` (the arrays are reused: from index 0 on, `count` of them), and
   * the result that ends the records if it came (`end`). The same as {@linkcode readBatch}
   * without an object per entry, for the cursors of a merge.
   */
  async readEntries(entries, offsets, lengths, max = 1024) {
    let n = 0;
    while (n < max) {
      const pos = this.#pos;
      const fast = this.#fastEntry();
      if (fast === null) continue;
      if (fast !== void 0) {
        entries[n] = fast;
        offsets[n] = pos;
        lengths[n++] = this.#pos - pos;
        continue;
      }
      const r = await this.readNext();
      if (r.kind !== "entry") return {
        count: n,
        end: r
      };
      entries[n] = r.entry;
      offsets[n] = r.offset;
      lengths[n++] = r.length;
    }
    return {
      count: n,
      end: void 0
    };
  }
  /**
   * Like {@linkcode readEntries}, without waiting: only the entries already read into the buffer
   * (returns how many; 0 when the next one needs a read, or the records end there).
   */
  readBufferedEntries(entries, offsets, lengths, max = 1024) {
    let n = 0;
    while (n < max) {
      const pos = this.#pos;
      const fast = this.#fastEntry();
      if (fast === null) continue;
      if (fast === void 0) break;
      entries[n] = fast;
      offsets[n] = pos;
      lengths[n++] = this.#pos - pos;
    }
    return n;
  }
  /**
   * The next entry if it is whole in the buffer and valid; null when a batch marker was skipped;
   * undefined otherwise (slow path).
   */
  #fast() {
    const pos = this.#pos;
    const e = this.#fastEntry();
    return e == null ? e : {
      kind: "entry",
      entry: e,
      offset: pos,
      length: this.#pos - pos
    };
  }
  /** {@linkcode #fast}'s entry, without its read result. */
  #fastEntry() {
    if (this.#done !== void 0 || this.#closed || this.header === void 0) return void 0;
    if (this.#batch !== void 0) return this.#nextOfBatch();
    const pos = this.#pos;
    const rel = pos - this.#bufStart;
    if (pos < this.#bufFrom || rel + RECORD_HEADER_BYTES > this.#bufLen || pos >= this.fileSizeBytes) {
      return void 0;
    }
    const c = checkRecord(this.#buf, this.#view, rel, this.#bufLen, this.#ctx);
    if (c.status !== "ok") return void 0;
    const e = this.#decodeAt(pos, c.length);
    return e === false ? void 0 : e ?? null;
  }
  #check(pos) {
    const rel = pos - this.#bufStart;
    return checkRecord(this.#buf, this.#view, rel, this.#bufLen, this.#ctx);
  }
  /** The entry at `pos`, or undefined for a batch marker (checked for order, then skipped). */
  #entry(pos, length) {
    const e = this.#decodeAt(pos, length);
    if (e === false) return this.#done;
    return e === void 0 ? void 0 : {
      kind: "entry",
      entry: e,
      offset: pos,
      length: this.#pos - pos
    };
  }
  /**
   * Decodes the record at `pos` and moves past it: its entry, undefined for a batch marker, or
   * false when it is out of order (the result is then `#done`).
   */
  #decodeAt(pos, length) {
    const rel = pos - this.#bufStart;
    const v = this.#view;
    const seq = recordSequence(v, rel);
    const epoch = recordEpoch(v, rel);
    const ts = recordTimestamp(v, rel);
    let reason;
    if (this.#resync) {
      this.#resync = false;
      this.#expected = seq;
    }
    if (seq !== this.#expected) reason = `sequence ${seq} where ${this.#expected} was expected`;
    else if (epoch < this.#lastEpoch) reason = `epoch ${epoch} after epoch ${this.#lastEpoch}`;
    else if (ts < this.#lastTs) reason = "timestamp goes backwards";
    if (reason !== void 0) {
      this.#finish({
        kind: "corrupted",
        offset: pos,
        reason,
        code: "Corrupted"
      });
      return false;
    }
    if (this.#buf[rel + R_TYPE] === RecordType.batch) {
      const claim = batchMarkerClaim(v, rel);
      if (claim > this.#claim) this.#claim = claim;
      this.#lastEpoch = epoch;
      this.#lastTs = ts;
      this.#pos = pos + length;
      return void 0;
    }
    if (this.#buf[rel + R_TYPE] === RecordType.atomicBatch) {
      return this.#expandBatch(pos, rel, length, epoch, ts);
    }
    if (this.#skim) return this.#skimmed(pos, rel, length, 1, epoch, ts);
    let win = this.#window;
    if ((win === void 0 || rel < win.from || rel + length > win.to) && length <= WINDOW / 16) {
      const to = Math.min(rel + WINDOW, this.#bufLen);
      win = this.#window = {
        buffer: this.#buf.slice(rel, to).buffer,
        from: rel,
        to
      };
    }
    const entry = decodeRecord(this.#buf, v, rel, epoch, win, this.#timestampOf(v, rel));
    this.#firstSeq ??= entry.sequence;
    this.#expected++;
    this.#count++;
    this.#lastEpoch = epoch;
    this.#lastTs = ts;
    this.#lastTimestampNs = entry.timestampNs;
    if (entry.epoch < this.#minEpoch || this.#count === 1) this.#minEpoch = entry.epoch;
    if (entry.epoch > this.#maxEpoch) this.#maxEpoch = entry.epoch;
    this.#pos = pos + length;
    return entry;
  }
  /**
   * An atomic batch record (checked, in order) as its consecutive entries: the first is returned,
   * the others wait in `#batch`. They share the record's epoch and timestamp.
   */
  #expandBatch(pos, rel, length, epoch, ts) {
    const v = this.#view;
    if (this.#skim) {
      const span = recordSpan(this.#buf, v, rel, RecordType.atomicBatch);
      return this.#skimmed(pos, rel, length, span, epoch, ts);
    }
    const ops = decodeBatchRecord(this.#buf, v, rel);
    const coreId = v.getUint16(rel + R_CORE, true);
    const timestampNs = this.#timestampOf(v, rel);
    const first = this.#expected;
    const batchLast = first + ops.length - 1;
    const entries = ops.map((operation, i) => ({
      coreId,
      epoch,
      sequence: first + i,
      timestampNs,
      operation,
      batchLast
    }));
    this.#firstSeq ??= first;
    this.#expected += ops.length;
    this.#count += ops.length;
    this.#lastEpoch = epoch;
    this.#lastTs = ts;
    this.#lastTimestampNs = timestampNs;
    if (epoch < this.#minEpoch || this.#count === ops.length) this.#minEpoch = epoch;
    if (epoch > this.#maxEpoch) this.#maxEpoch = epoch;
    this.#batch = entries;
    this.#batchAt = 0;
    this.#batchEnd = pos + length;
    return this.#nextOfBatch();
  }
  /**
   * {@linkcode skimToEnd}'s step: the record at `pos` (checked, in order) taking `span`
   * sequences, counted as reading its entries would count them; returns a placeholder entry.
   */
  #skimmed(pos, rel, length, span, epoch, ts) {
    this.#firstSeq ??= this.#expected;
    this.#expected += span;
    this.#count += span;
    this.#lastEpoch = epoch;
    this.#lastTs = ts;
    this.#lastTimestampNs = this.#timestampOf(this.#view, rel);
    if (epoch < this.#minEpoch || this.#count === span) this.#minEpoch = epoch;
    if (epoch > this.#maxEpoch) this.#maxEpoch = epoch;
    this.#pos = pos + length;
    return _SKIMMED;
  }
  /**
   * Reads on to the end of the records, as {@linkcode readNext} would with every check (CRC,
   * fields, sequence, epoch and timestamp order), without building their entries: returns the
   * result that ends them; {@linkcode stats} is then as after reading them all. Several times
   * faster than reading them, for what only needs where the records end and their last sequence.
   */
  async skimToEnd() {
    while (this.#batch !== void 0) this.#nextOfBatch();
    this.#skim = true;
    try {
      while (true) {
        let e = this.#fastEntry();
        while (e !== void 0) e = this.#fastEntry();
        const r = await this.readNext();
        if (r.kind !== "entry") return r;
      }
    } finally {
      this.#skim = false;
    }
  }
  /** The next entry of the batch being handed out; past its last, `#pos` moves past it. */
  #nextOfBatch() {
    const batch = this.#batch;
    const entry = batch[this.#batchAt++];
    if (this.#batchAt === batch.length) {
      this.#batch = void 0;
      this.#pos = this.#batchEnd;
    }
    return entry;
  }
  /** The record's timestamp as a bigint: the previous record's when its bytes are the same. */
  #timestampOf(v, rel) {
    const lo = v.getUint32(rel + R_TIMESTAMP, true);
    const hi = v.getUint32(rel + R_TIMESTAMP + 4, true);
    if (lo !== this.#tsLo || hi !== this.#tsHi) {
      this.#tsLo = lo;
      this.#tsHi = hi;
      this.#tsBig = v.getBigInt64(rel + R_TIMESTAMP, true);
    }
    return this.#tsBig;
  }
  #finish(r) {
    this.#done = r;
    return r;
  }
  /** Classifies the damage at `pos` (see `reader_damage.ts`). */
  async #afterDamage(pos, reason, code, zeroStart = false) {
    const later = this.#later;
    const maxRecordBytes = this.#ctx.maxRecordBytes;
    try {
      const { result, claim } = await classifyDamage({
        bytes: this.#bytes,
        header: this.header,
        fileSizeBytes: this.fileSizeBytes,
        decode: this.#ctx,
        isLast: this.#last,
        hasLater: later !== void 0,
        expectedFirst: this.#expectedFirst,
        expected: this.#expected,
        laterClaim: () => acknowledgedClaim(later, maxRecordBytes)
      }, pos, reason, code, zeroStart);
      if (claim > this.#claim) this.#claim = claim;
      return result;
    } finally {
      this.#window = void 0;
      this.#adopt();
    }
  }
  /**
   * Makes bytes `[pos, pos + n)` (or up to the end of the file) available in the buffer, and as
   * many after them as it holds.
   */
  async #ensure(pos, n) {
    const want = Math.min(n, this.fileSizeBytes - pos);
    if (pos >= this.#bufFrom && pos + want <= this.#bufStart + this.#bufLen) return;
    this.#window = void 0;
    this.#bufLen = 0;
    try {
      await this.#bytes.fill(pos, n);
    } finally {
      this.#adopt();
    }
  }
  /** Takes the read window's buffer and place as the reader's own (decoding reads those). */
  #adopt() {
    const w = this.#bytes;
    this.#buf = w.buf;
    this.#view = w.view;
    this.#bufStart = w.start;
    this.#bufFrom = w.from;
    this.#bufLen = w.length;
  }
  /**
   * Goes on reading at `offset` (from a "corrupted" result's `resumeAt`) as if the damage were not
   * there: the record there sets the expected sequence. For salvaging what follows damage.
   */
  resume(offset) {
    if (this.#done?.kind !== "corrupted" || offset <= this.#done.offset) {
      throw new PerCoreWalError("Corrupted", `Cannot resume "${this.path}" at offset ${offset}`);
    }
    this.#done = void 0;
    this.#pos = offset;
    this.#resync = true;
  }
  /** Statistics of what was read so far (complete once `readNext` returned a non-entry). */
  get stats() {
    const h = this.header;
    const first = this.#firstSeq ?? this.#expected;
    return {
      coreId: h?.coreId ?? -1,
      path: this.path,
      segmentIndex: h?.segmentIndex ?? -1,
      fileSizeBytes: this.fileSizeBytes,
      validEndOffset: h === void 0 ? 0 : this.#pos,
      entryCount: this.#count,
      firstSequence: first,
      lastSequence: this.#expected - 1,
      minEpoch: this.#minEpoch,
      maxEpoch: this.#maxEpoch
    };
  }
  /**
   * The largest sequence that a batch marker read so far says was acknowledged when its batch
   * was submitted (0 when none; version 1 segments have no markers).
   */
  get acknowledgedClaim() {
    return this.#claim;
  }
  /** The timestamp of the last record read (0 when none), for writers that continue the log. */
  get lastTimestampNs() {
    return this.#lastTimestampNs;
  }
  /**
   * Yields every valid entry. Ends at the end of the records or at a torn tail (see
   * `readNext` for which); throws `PerCoreWalError` at corruption.
   */
  async *[Symbol.asyncIterator]() {
    while (true) {
      const r = await this.readNext();
      if (r.kind === "entry") {
        yield r.entry;
        continue;
      }
      if (r.kind === "corrupted") {
        throw new PerCoreWalError(r.code, segmentDamageMessage("read", this.path, r.reason, r.offset), {
          segment: this.path,
          offset: r.offset,
          coreId: this.header?.coreId
        });
      }
      return;
    }
  }
  /**
   * Closes the file. Idempotent. A read ahead in flight completes after it (its buffer is
   * dropped); `closeAsync()` waits for it.
   */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#bufLen = 0;
    this.#window = void 0;
    this.#bytes.close();
  }
  /** Waits for a read ahead in flight, then closes the file. Idempotent. */
  async closeAsync() {
    if (!this.#closed) await this.#bytes.closeAsync();
    this.close();
  }
  /** Closes the file. */
  [Symbol.dispose]() {
    this.close();
  }
  /** Closes the file (after a read ahead in flight). */
  [Symbol.asyncDispose]() {
    return this.closeAsync();
  }
};

// src/open_recovery.ts
async function recoverCoreSegments(config, coreId, onEvent) {
  const putAside = [];
  while (true) {
    const segs = _startedSegments(config, coreId);
    const walk = await _walk(config, coreId, segs);
    if (walk.kind === "done") return {
      ...walk.core,
      putAside
    };
    const begin = segs[walk.at];
    const size = walk.offset > 0 ? lstatIfExists(begin.path)?.size : void 0;
    const aside = setTailAside(config.baseDir, {
      path: begin.path,
      offset: walk.offset
    }, segs.slice(walk.at + 1));
    putAside.push(...aside);
    if (aside.length > 0) emitEvent(onEvent, {
      type: "segmentsPutAside",
      coreId,
      paths: aside
    });
    if (size !== void 0) {
      emitEvent(onEvent, {
        type: "tornTailCut",
        coreId,
        segment: begin.index,
        path: begin.path,
        offset: walk.offset,
        bytes: Math.max(0, size - walk.offset)
      });
    }
  }
}
function _startedSegments(config, coreId) {
  const segs = listCoreSegments(config, coreId);
  for (let n = unstartedAtEnd(segs); n > 0; n--) removePath(segs.pop().path);
  return segs;
}
async function _walk(config, coreId, segs) {
  const core = {
    lastSequence: 0,
    lastTimestampNs: 0n,
    maxEpoch: 0,
    last: void 0,
    nextIndex: segs.length > 0 ? segs[segs.length - 1].index + 1 : 0,
    putAside: []
  };
  let previousLast;
  for (let i = 0; i < segs.length; i++) {
    const read = await _readSegment(config, coreId, segs, i, previousLast);
    if (read.kind === "tail") return {
      kind: "tail",
      at: i,
      offset: read.offset
    };
    const { reader, clean } = read;
    await using _ = reader;
    const isLast = i === segs.length - 1;
    if (!isLast) syncFile(segs[i].path);
    const st = reader.stats;
    previousLast = st.lastSequence;
    core.lastSequence = Number(st.lastSequence);
    if (st.entryCount > 0) core.lastTimestampNs = reader.lastTimestampNs;
    core.maxEpoch = Math.max(core.maxEpoch, Number(st.maxEpoch));
    const h = reader.header;
    assert(h !== void 0, "a segment that continues a core's log has a header", {
      coreId
    });
    if (isLast) {
      core.last = {
        index: segs[i].index,
        path: segs[i].path,
        validEnd: st.validEndOffset,
        size: st.fileSizeBytes,
        clean,
        salt: h.salt,
        firstSequence: Number(h.firstSequence),
        version: h.version
      };
    }
  }
  return {
    kind: "done",
    core
  };
}
async function _readSegment(config, coreId, segs, i, previousLast) {
  const maxRecordBytes = config.options.maxRecordBytes;
  const paths = segs.map((s2) => s2.path);
  const s = segs[i];
  const isLast = i === segs.length - 1;
  const refuse = (d) => new PerCoreWalError(d.code, segmentDamageMessage("open", s.path, d.reason, d.gap ? void 0 : d.offset), {
    coreId,
    segment: s.path,
    offset: d.gap ? void 0 : d.offset
  });
  const expected = previousLast !== void 0 ? previousLast + 1 : s.index === 0 ? 1 : void 0;
  const reader = await PerCoreWalReader.open(s.path, {
    maxRecordBytes,
    isLastSegment: isLast,
    laterSegments: paths.slice(i + 1),
    expectedFirstSequence: expected
  });
  try {
    const facts = startFacts(reader.header, coreId, s.index, previousLast, i === 0);
    const started = await decideStartOf(facts, paths.slice(i), maxRecordBytes);
    if (started.kind === "tail") return await _closed(reader, {
      kind: "tail",
      offset: 0
    });
    if (started.kind === "corrupt") throw refuse(started);
    let r = await reader.readNext();
    while (r.kind === "entry") r = await reader.readNext();
    const later = paths.slice(i + 1);
    const ended = await decideEndOf(reader.header !== void 0, r, expected, later, maxRecordBytes, s.path);
    if (ended.kind === "corrupt") throw refuse(ended);
    if (ended.kind === "tail" && !(isLast && ended.offset > 0)) {
      return await _closed(reader, {
        kind: "tail",
        offset: ended.offset
      });
    }
    return {
      kind: "read",
      reader,
      clean: r.kind === "end"
    };
  } catch (e) {
    await reader.closeAsync();
    throw e;
  }
}
async function _closed(reader, value) {
  await reader.closeAsync();
  return value;
}

// src/core_log.ts
var CoreLog = class _CoreLog {
  /** The core this log belongs to. */
  coreId;
  /** Why the io_uring backend was not used, when `backend: "auto"` fell back. */
  fallbackReason;
  #config;
  #o;
  #io;
  #ownsIo;
  #mode;
  #align;
  #seg;
  #next;
  #segTail = SEGMENT_DATA_OFFSET;
  #salt = 0;
  /** The batch that takes appends, until it is sealed. */
  #openBatch;
  #segments;
  /** Segments in use whose preparation failed: their batches wait for a retry. */
  #stalled = /* @__PURE__ */ new Set();
  #nextSeq = 1;
  #epoch = 0;
  #lastUs = 0;
  #pendingBytes = 0;
  #buffers;
  #pipeline;
  #flushWanted = false;
  #timer;
  #failed;
  #closed = false;
  #closing;
  /** The epoch of the last batch begun: a core's epoch never decreases. */
  #batchEpoch = 0;
  #records = 0;
  #bytes = 0;
  /** Batches sealed since open (submitted or not: some may wait for their segment's layout). */
  #sealedBatches = 0;
  /** Copies runs out of shared memory at memcpy speed whatever their alignment. */
  #copier = new SharedCopier();
  #stampUs = -1;
  #stampEpoch = -1;
  /** Epoch (low, high word) and timestamp in ns (low, high) as `appendFrom` stamps them. */
  #stampWords = new Uint32Array(4);
  constructor(config, coreId, io, ownsIo, mode, fallbackReason, options) {
    this.#config = config;
    this.#o = config.options;
    this.coreId = coreId;
    this.#io = io;
    this.#ownsIo = ownsIo;
    this.#mode = mode;
    this.#align = mode === "buffered" ? 1 : 4096;
    this.#buffers = new BatchBuffers(io, this.#o.maxBatchBytes, this.#o.maxInFlightBatches);
    this.fallbackReason = fallbackReason;
    this.#segments = new SegmentPreparer(config, coreId, io, mode, (seg) => this.#prepared(seg));
    this.#pipeline = new BatchPipeline(coreId, io, mode, this.#o.maxInFlightBatches, this.#buffers, this.#segments, {
      acknowledged: (recordBytes) => this.#pendingBytes -= recordBytes,
      pumped: () => this.#flushIfWanted(),
      failed: (error) => {
        this.#failed = error;
        clearTimeout(this.#timer);
      }
    }, options);
  }
  /**
   * Opens core `coreId`'s log in `config.baseDir`: creates it, or continues after the last
   * valid record (a torn tail is cut; corruption refuses with `PerCoreWalError`).
   */
  static async open(config, coreId, options = {}) {
    if (!(config instanceof PerCoreWalConfig)) {
      throw new TypeError("config must be a PerCoreWalConfig");
    }
    checkOptionKeys(options, "CoreLogOptions");
    enableNativeCrc32c();
    if (!Number.isInteger(coreId) || coreId < 0 || coreId >= config.numCores) {
      throw new PerCoreWalError("InvalidCoreId", `Core id ${coreId} is out of range: this WAL has cores 0 to ${config.numCores - 1}`, {
        coreId
      });
    }
    ensureDirectory(config.baseDir, config.options);
    const made = options.backend ? {
      backend: options.backend
    } : createBackend(config.options, options.completionSpinStop, options.lazyCompletionWait);
    const io = made.backend;
    let log;
    try {
      const mode = chooseWriteMode(config, io);
      log = new _CoreLog(config, coreId, io, options.backend === void 0, mode, made.fallbackReason, options);
      log.#epoch = options.minEpoch === void 0 ? 0 : safeInteger(options.minEpoch, "minEpoch");
      if (made.fallbackReason !== void 0) {
        emitEvent(options.onEvent, {
          type: "backendFallback",
          reason: made.fallbackReason
        });
      }
      await log.#recover(options.onEvent);
      return log;
    } catch (e) {
      if (log !== void 0) await log.#release();
      else if (options.backend === void 0) await io.close();
      throw e;
    }
  }
  // -------------------------------------------------------------------------------------------
  // Appends
  /** Appends a `put`; returns its sequence. */
  appendPut(key, value) {
    const k = toKey(key);
    const v = toBytes(value, "value");
    const len = PUT_OVERHEAD_BYTES + k.length + v.length;
    const pos = this.#reserve(len);
    const b = this.#openBatch;
    const seq = this.#nextSeq++;
    writeRecordHeader(b.view, pos, len, RecordType.put, this.coreId, this.#epoch, seq, this.#now(), 0);
    b.view.setUint16(pos + RECORD_HEADER_BYTES, k.length, true);
    b.buf.set(k, pos + PUT_OVERHEAD_BYTES);
    b.buf.set(v, pos + PUT_OVERHEAD_BYTES + k.length);
    return this.#commit(b, pos, len, seq);
  }
  /** Appends a `delete`; returns its sequence. */
  appendDelete(key) {
    return this.#append(deleteOperation(key));
  }
  /** Appends a `checkpoint` marker; returns its sequence. */
  appendCheckpoint(id) {
    return this.#append(checkpointOperation(id));
  }
  /** Appends a `commit` of source offsets (and a watermark); returns its sequence. */
  appendCommit(offsets, watermark) {
    return this.#append(commitOperation(offsets, watermark));
  }
  /**
   * Appends an epoch barrier: from it on, this core's records have at least `epoch` (default:
   * the core's current epoch). Returns its sequence.
   */
  appendEpochBarrier(epoch) {
    return this.#append(epochBarrierOperation(epoch, this.#epoch));
  }
  /** Appends any operation; returns its sequence. */
  append(op) {
    return this.#append(normalizeOperation(op, this.#epoch));
  }
  #append(op) {
    const len = RECORD_HEADER_BYTES + bodyLength(op);
    const pos = this.#reserve(len);
    if (op.type === "epochBarrier" && op.epoch > this.#epoch) this.#epoch = op.epoch;
    const b = this.#openBatch;
    const seq = this.#nextSeq++;
    writeRecordHeader(b.view, pos, len, RecordType[op.type], this.coreId, this.#epoch, seq, this.#now(), 0);
    writeBody(op, b.buf, b.view, pos + RECORD_HEADER_BYTES);
    return this.#commit(b, pos, len, seq);
  }
  /**
   * Appends several operations (puts, deletes, commits) as one atomic batch: one record (format
   * version 3) that takes one sequence per operation, consecutive. After any crash, readers see
   * all of them or none. Returns the last sequence (a number). Every operation is checked and
   * copied before a sequence is taken: an empty batch throws `RangeError`, a checkpoint, epoch
   * barrier or nested batch `TypeError`, a record above `maxRecordBytes` "RecordTooLarge".
   */
  appendBatch(ops) {
    const n = normalizeBatch(ops);
    const len = RECORD_HEADER_BYTES + batchBodyLength(n);
    const pos = this.#reserve(len);
    const b = this.#openBatch;
    const first = this.#nextSeq;
    const last = first + n.length - 1;
    writeRecordHeader(b.view, pos, len, RecordType.atomicBatch, this.coreId, this.#epoch, first, this.#now(), 0);
    writeBatchBody(n, b.buf, b.view, pos + RECORD_HEADER_BYTES);
    this.#nextSeq = last + 1;
    this.#commit(b, pos, len, last);
    this.#records += n.length - 1;
    return last;
  }
  /**
   * Appends records encoded elsewhere (by producers, in shared memory), packed one after another
   * in `src[start..end)`, while their sequences are the next ones: every field is theirs but the
   * epoch, the timestamp and the CRC, which are stamped here so that they follow this core's
   * order. An epoch barrier moves the core to its epoch. Each run of records that fits the open
   * batch is copied with one `set()`.
   *
   * Returns the record boundary it stopped at: `end`, or before a record whose sequence is not
   * next (another producer holds that one), before anything that is not a whole record (a
   * producer ring's wrap marker), or before `maxPendingBytes` would be exceeded. Throws (for
   * example "Backpressure") only when it took nothing: what it did not take stays in `src`.
   * `nowUs`, a wall-clock time read after the records were published, is their timestamp
   * (never going backwards).
   */
  appendFrom(src, srcView, start, end, nowUs) {
    if (nowUs > this.#lastUs) this.#lastUs = nowUs;
    const o = this.#o;
    let p = start;
    while (p + RECORD_HEADER_BYTES <= end) {
      const first = srcView.getUint32(p + R_LENGTH, true);
      if (first < RECORD_HEADER_BYTES || first > end - p) break;
      if (recordSequence(srcView, p) !== this.#nextSeq) break;
      let pos;
      try {
        pos = this.#reserve(first);
      } catch (e) {
        if (p === start) throw e;
        break;
      }
      const b = this.#openBatch;
      const us = this.#lastUs;
      const room = Math.min(b.buf.length, o.segmentSizeBytes - b.fileOffset);
      let used = pos + first;
      let q = p + first;
      let seq = this.#nextSeq + recordSpan(src, srcView, p, src[p + R_TYPE]);
      let pending = this.#pendingBytes + first;
      while (used < o.maxBatchBytes && q + RECORD_HEADER_BYTES <= end) {
        const len = srcView.getUint32(q + R_LENGTH, true);
        if (len < RECORD_HEADER_BYTES || len > end - q || used + len > room) break;
        if (len > o.maxRecordBytes || pending + len > o.maxPendingBytes) break;
        if (recordSequence(srcView, q) !== seq) break;
        const span = recordSpan(src, srcView, q, src[q + R_TYPE]);
        used += len;
        q += len;
        seq += span;
        pending += len;
      }
      this.#copier.copy(src, p, q - p, b.buf, pos);
      const buf = b.buf;
      const v = b.view;
      const salt = this.#salt;
      let r = pos;
      let last = pos;
      while (r < used) {
        const len = v.getUint32(r + R_LENGTH, true);
        if (buf[r + R_TYPE] === RecordType.epochBarrier) {
          const epoch = getU64(v, r + RECORD_HEADER_BYTES);
          if (epoch > this.#epoch) this.#epoch = epoch;
        }
        if (us !== this.#stampUs || this.#epoch !== this.#stampEpoch) this.#stamp(us);
        v.setUint32(r + R_EPOCH, this.#stampWords[0], true);
        v.setUint32(r + R_EPOCH + 4, this.#stampWords[1], true);
        v.setUint32(r + R_TIMESTAMP, this.#stampWords[2], true);
        v.setUint32(r + R_TIMESTAMP + 4, this.#stampWords[3], true);
        v.setUint32(r + R_CRC, recordCrc(buf, r, len, salt), true);
        last = r;
        r += len;
      }
      const bytes = used - pos;
      b.used = used;
      b.lastSeq = seq - 1;
      b.lastPos = last;
      b.recordBytes += bytes;
      this.#pendingBytes = pending;
      this.#records += seq - this.#nextSeq;
      this.#bytes += bytes;
      this.#nextSeq = seq;
      if (used >= o.maxBatchBytes) this.#seal(b);
      p = q;
    }
    return p;
  }
  #stamp(us) {
    const v = new DataView(this.#stampWords.buffer);
    setU64(v, 0, this.#epoch);
    setNsFromUs(v, 8, us);
    for (let i = 0; i < 4; i++) this.#stampWords[i] = v.getUint32(i * 4, true);
    this.#stampUs = us;
    this.#stampEpoch = this.#epoch;
  }
  /** Finds room for a record of `len` bytes: returns its offset in the open batch. */
  #reserve(len) {
    if (this.#failed !== void 0) throw this.#failed;
    if (this.#stalled.size !== 0) throw this.#retryStalled();
    if (this.#closed || this.#closing !== void 0) {
      throw new PerCoreWalError("Closed", `Cannot append to core ${this.coreId}: the log is closed`, {
        coreId: this.coreId
      });
    }
    if (len > this.#o.maxRecordBytes) {
      throw new PerCoreWalError("RecordTooLarge", `Record of ${len} bytes is larger than maxRecordBytes (${this.#o.maxRecordBytes})`, {
        coreId: this.coreId
      });
    }
    if (this.#pendingBytes > 0 && this.#pendingBytes + len > this.#o.maxPendingBytes) {
      throw new PerCoreWalError("Backpressure", `Core ${this.coreId} has ${this.#pendingBytes} bytes waiting for the disk (maxPendingBytes ${this.#o.maxPendingBytes}): await sync() before appending more`, {
        coreId: this.coreId
      });
    }
    let b = this.#openBatch;
    if (b !== void 0 && b.used + len > b.buf.length) {
      this.#seal(b);
      b = void 0;
    }
    const start = b === void 0 ? this.#segTail : b.fileOffset + b.used;
    const need = b === void 0 ? len + BATCH_MARKER_BYTES : len;
    if (start + need > this.#o.segmentSizeBytes) {
      this.#rotate();
      b = void 0;
    }
    if (b === void 0) {
      b = this.#openBatch = this.#newBatch(len);
      if (b.used + len > b.buf.length) throw this.#violated("a batch never grows past its buffer");
    }
    return b.used;
  }
  #commit(b, pos, len, seq) {
    b.view.setUint32(pos + R_CRC, recordCrc(b.buf, pos, len, this.#salt), true);
    b.used = pos + len;
    b.lastSeq = seq;
    b.lastPos = pos;
    b.recordBytes += len;
    this.#pendingBytes += len;
    this.#records++;
    this.#bytes += len;
    if (b.used >= this.#o.maxBatchBytes) this.#seal(b);
    return seq;
  }
  /** Wall-clock microseconds, never going backwards. */
  #now() {
    const us = Math.round((performance.timeOrigin + performance.now()) * 1e3);
    if (us > this.#lastUs) this.#lastUs = us;
    return this.#lastUs;
  }
  // -------------------------------------------------------------------------------------------
  // Batches
  #newBatch(len) {
    this.#seg.batches++;
    if (this.#epoch < this.#batchEpoch) throw this.#violated("a core's epoch never decreases");
    this.#batchEpoch = this.#epoch;
    return openBatch(this.#buffers, len, this.#seg, this.#segTail, this.coreId, this.#epoch, this.#nextSeq, this.#now());
  }
  /** Closes the open batch to appends and queues it for submission. */
  #seal(b) {
    if (this.#openBatch === b) this.#openBatch = void 0;
    const end = Math.ceil(b.used / this.#align) * this.#align;
    if (end > b.buf.length) throw this.#violated("a batch never grows past its buffer");
    if (end > b.used) padBatch(b, end);
    if (b.seg === this.#seg) {
      this.#segTail = b.fileOffset + b.used;
      this.#layOutNext();
    }
    this.#sealedBatches++;
    this.#pipeline.enqueue(b);
  }
  /**
   * Once the current segment is half written, the next one (prepared with its first window only)
   * is laid out further in the background, one step ({@linkcode nextSegmentWindow}): its layout
   * then changes another file's metadata than the one the data's fdatasyncs commit, and the
   * writer finds it laid out well ahead when it rotates. The rest of a segment is laid out ahead
   * of its writer in place ({@linkcode SegmentPreparer.keepAhead}).
   */
  #layOutNext() {
    const next = this.#next;
    const size = this.#o.segmentSizeBytes;
    if (next === void 0 || this.#segTail * 2 < size) return;
    this.#segments.layOutTo(next, nextSegmentWindow(size));
  }
  /** After a submission: seals the open batch if a flush waits for a free slot. */
  #flushIfWanted() {
    const open = this.#openBatch;
    if (this.#flushWanted && open !== void 0 && this.#pipeline.hasFreeSlot) {
      this.#flushWanted = false;
      this.#seal(open);
    }
  }
  /** Fails the core with an `Internal` error naming `invariant`, and returns that error. */
  #violated(invariant) {
    return this.#pipeline.violated(invariant);
  }
  // -------------------------------------------------------------------------------------------
  // Durability
  /**
   * Resolves when every record appended before the call is durable; rejects if it cannot be.
   * `options.signal` stops the wait (it rejects with the signal's reason; the records still
   * become durable).
   */
  sync(options) {
    let signal;
    try {
      signal = waitSignal(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#waitFor(this.#nextSeq - 1, signal);
  }
  /**
   * Resolves when record `sequence` (and every one before it) is durable. `options.signal`
   * stops the wait (it rejects with the signal's reason; the record still becomes durable).
   */
  waitDurable(sequence, options) {
    let signal;
    try {
      signal = durableWaitSignal(sequence, options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (sequence >= this.#nextSeq) {
      return Promise.reject(new RangeError(`sequence ${sequence} was not appended yet (last is ${this.#nextSeq - 1})`));
    }
    return this.#waitFor(sequence, signal);
  }
  #waitFor(seq, signal) {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#failed !== void 0) return Promise.reject(this.#failed);
    if (seq <= this.#pipeline.durableSequence) return Promise.resolve();
    if (this.#stalled.size !== 0) return Promise.reject(this.#retryStalled());
    if (this.#closed) {
      return Promise.reject(new PerCoreWalError("Closed", `Core ${this.coreId}'s log is closed`));
    }
    let waiter;
    const wait = new Promise((resolve, reject) => {
      waiter = this.#pipeline.waiters.add(seq, resolve, reject);
      const open = this.#openBatch;
      if (open !== void 0 && seq >= open.firstSeq) this.#requestFlush();
    });
    return raceSignal(wait, signal, () => this.#pipeline.waiters.remove(waiter));
  }
  #requestFlush() {
    if (this.#o.syncDelayMs > 0) {
      this.#timer ??= setTimeout(() => {
        this.#timer = void 0;
        this.#flushNow();
      }, this.#o.syncDelayMs);
      return;
    }
    this.#flushNow();
  }
  /** Seals the open batch now if a slot is free, else as soon as one frees (group commit). */
  #flushNow() {
    const open = this.#openBatch;
    if (open === void 0 || this.#failed !== void 0) return;
    if (this.#pipeline.hasFreeSlot) this.#seal(open);
    else this.#flushWanted = true;
  }
  // -------------------------------------------------------------------------------------------
  // Segments
  #rotate() {
    const next = this.#next ?? this.#prepare(this.#seg.index + 1, false, this.#seg);
    this.#next = void 0;
    if (next.error !== void 0) {
      this.#segments.discard(next);
      throw next.error;
    }
    if (this.#openBatch !== void 0) this.#seal(this.#openBatch);
    if (this.#pipeline.lastSealedSequence !== this.#nextSeq - 1) {
      throw this.#violated("sequences are contiguous across a rotation");
    }
    const old = this.#seg;
    old.sealed = true;
    if (old.batches === 0) this.#segments.closeSegment(old);
    this.#activate(next);
    if (next.ready) this.#next = this.#prepare(next.index + 1, true);
  }
  /** Makes a prepared segment the current one; its header is written with its first batch. */
  #activate(seg) {
    this.#segments.activate(seg, this.#nextSeq, this.#epoch, this.#now());
    this.#seg = seg;
    this.#salt = saltState(seg.salt);
    this.#segTail = SEGMENT_DATA_OFFSET;
  }
  /**
   * A background preparation settled. One that failed before the log rotated into its segment
   * is kept there and refuses the append that rotates ({@linkcode #rotate}). One that failed
   * after (the segment is current, or was, and holds batches: none of them submitted, #pump waits
   * for ready) refuses only appends and syncs too: the segment stalls, the waits it holds up are
   * rejected with the error, and the next append or sync retries the preparation in place (same
   * salt, same first sequence, so the waiting batches stay valid). The core is not failed.
   */
  #prepared(seg) {
    if (seg.error !== void 0 && seg.salt !== 0) {
      this.#stalled.add(seg);
      const from = seg.ready ? this.#pipeline.firstWaitingSequence(seg) : seg.firstSequence;
      this.#pipeline.waiters.rejectFrom(from, seg.error);
    }
    if (seg === this.#seg && seg.ready && this.#next === void 0 && !this.#closed && this.#failed === void 0) {
      this.#next = this.#prepare(seg.index + 1, true);
    }
    this.#pipeline.pump();
  }
  /** Starts preparing the stalled segments again; returns the error that stalled the first. */
  #retryStalled() {
    let first;
    for (const seg of [
      ...this.#stalled
    ]) {
      first ??= seg.error;
      this.#segments.retry(seg);
      if (seg.error === void 0) this.#stalled.delete(seg);
    }
    return first ?? new PerCoreWalError("Io", `Core ${this.coreId}'s segment preparation failed`);
  }
  // Segment preparation lives in segment_prep.ts; the engine asks it with its batch counters.
  #prepare(index, quiet = false, after) {
    return this.#segments.prepare(index, quiet, this.#sealedBatches, this.#bytes, after);
  }
  /** Reads the existing segments of this core and continues after the last valid record. */
  async #recover(onEvent) {
    const found = await recoverCoreSegments(this.#config, this.coreId, onEvent);
    const last = found.last;
    this.#epoch = Math.max(this.#epoch, found.maxEpoch);
    const lastSeq = found.lastSequence;
    const lastTsNs = found.lastTimestampNs;
    let nextIndex = found.nextIndex;
    this.#nextSeq = lastSeq + 1;
    this.#pipeline.startAt(lastSeq, {
      segment: 0,
      offset: SEGMENT_DATA_OFFSET,
      sequence: lastSeq
    });
    this.#lastUs = Number(lastTsNs / 1000n);
    if (last !== void 0) {
      const seg = this.#segments.adopt(last.index, last.path, last.firstSequence, last.salt, last.validEnd);
      const file = seg.file;
      const resumable = last.clean && last.version === FORMAT_VERSION && last.size === this.#o.segmentSizeBytes && last.validEnd % this.#align === 0 && last.validEnd < last.size;
      if (!resumable && last.validEnd < last.size) {
        this.#io.truncate(file, last.validEnd);
        if (!last.clean) {
          emitEvent(onEvent, {
            type: "tornTailCut",
            coreId: this.coreId,
            segment: last.index,
            path: last.path,
            offset: last.validEnd,
            bytes: last.size - last.validEnd
          });
        }
      }
      await this.#io.writeParts(file, [], true, "prepare");
      this.#pipeline.startAt(lastSeq, {
        segment: last.index,
        offset: last.validEnd,
        sequence: lastSeq
      });
      if (resumable) {
        this.#seg = seg;
        this.#salt = saltState(seg.salt);
        this.#segTail = last.validEnd;
      } else {
        this.#segments.closeSegment(seg);
        nextIndex = last.index + 1;
      }
    }
    if (this.#seg === void 0) {
      const seg = this.#prepare(nextIndex);
      await seg.prepared;
      if (seg.error !== void 0) {
        this.#segments.discard(seg);
        throw seg.error;
      }
      this.#activate(seg);
      nextIndex++;
    }
    this.#next = this.#prepare(this.#seg.index + 1, true);
  }
  // -------------------------------------------------------------------------------------------
  // State
  /** The backend writing this core's segments. */
  get backend() {
    return this.#io.kind;
  }
  /** The write mode in use. */
  get writeMode() {
    return this.#mode;
  }
  /** The current epoch of this core. */
  get epoch() {
    return this.#epoch;
  }
  /** Moves this core to a later epoch (epochs never decrease within a core). */
  setEpoch(epoch) {
    safeInteger(epoch, "epoch");
    if (epoch < this.#epoch) {
      throw new RangeError(`epoch ${epoch} is before core ${this.coreId}'s epoch ${this.#epoch}`);
    }
    this.#epoch = epoch;
  }
  /**
   * Handles I/O completions already there (a busy caller's shortcut: they would otherwise be
   * noticed when its event loop next runs).
   */
  pollCompletions() {
    this.#io.pollCompletions?.();
  }
  /**
   * Passes `IoBackend.waitIdle` on: blocks until a completion, a write to `bell` or the
   * timeout (bounded by {@linkcode waitBound}).
   */
  waitIdle(bell, timeoutMs) {
    if (this.#io.waitIdle === void 0) return "unavailable";
    return this.#io.waitIdle(bell, this.waitBound(timeoutMs));
  }
  /**
   * The longest an idle owner may block its thread out of `timeoutMs`: 1 ms while a
   * `syncDelayMs` flush is due (its timer needs the owner's event loop).
   */
  waitBound(timeoutMs) {
    return this.#timer !== void 0 ? Math.min(timeoutMs, 1) : timeoutMs;
  }
  /** Whether a segment is being prepared (a chain of promises that may need no I/O to go on). */
  get preparing() {
    return this.#segments.preparing;
  }
  /** Whether `waitIdle` can block on the backend's completions. */
  get canWaitIdle() {
    return this.#io.waitIdle !== void 0;
  }
  /** Passes `IoBackend.setOwnerIdle` on (see `CoreLogOptions.lazyCompletionWait`). */
  setOwnerIdle(idle) {
    this.#io.setOwnerIdle?.(idle);
  }
  /** Sequence the next record appended will get (`sequence` plus one). */
  get nextSequence() {
    return this.#nextSeq;
  }
  /** Sequence of the last record appended (0 when none). */
  get sequence() {
    return this.#nextSeq - 1;
  }
  /** Sequence of the last durable record (0 when none). */
  get durableSequence() {
    return this.#pipeline.durableSequence;
  }
  /** Where the next record will be appended. */
  get position() {
    const b = this.#openBatch;
    return {
      segment: this.#seg.index,
      offset: b === void 0 ? this.#segTail : b.fileOffset + b.used,
      sequence: this.#nextSeq - 1
    };
  }
  /** The end of the durable records. */
  get syncedPosition() {
    return {
      ...this.#pipeline.durablePosition
    };
  }
  /** The error that stopped this core, if one did. */
  get failure() {
    return this.#failed;
  }
  /** The batch latencies as cumulative buckets and a sum (for Prometheus-style histograms). */
  syncLatencyBuckets() {
    return this.#pipeline.latency.buckets();
  }
  /** Counters and latencies (`withLatency` false skips computing the percentiles). */
  metrics(withLatency = true) {
    return {
      coreId: this.coreId,
      backend: this.#io.kind,
      writeMode: this.#mode,
      recordsAppended: this.#records,
      bytesAppended: this.#bytes,
      batches: this.#pipeline.batches,
      fdatasyncs: this.#pipeline.syncs,
      syncLatency: withLatency ? this.#pipeline.latency.summary() : {
        count: 0,
        p50Us: 0,
        p99Us: 0,
        maxUs: 0
      },
      inFlightBatches: this.#pipeline.inFlight,
      pendingBytes: this.#pendingBytes
    };
  }
  /**
   * Makes everything appended durable, then closes the files (and the backend it created).
   * Appends nothing of its own. Idempotent. Rejects with the core's failure if it failed (the
   * files are closed all the same).
   */
  close() {
    this.#closing ??= (async () => {
      let err;
      if (this.#failed === void 0) {
        await this.#waitFor(this.#nextSeq - 1).catch((e) => err = e);
      }
      this.#closed = true;
      await this.#release();
      err ??= this.#failed;
      if (err !== void 0) throw err;
    })();
    return this.#closing;
  }
  /** Waits for what is in flight, then frees files and memory. */
  async #release() {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#pipeline.inFlight > 0) await this.#pipeline.drained();
    await this.#segments.settle();
    for (const seg of [
      ...this.#segments.openSegments
    ]) this.#segments.closeSegment(seg);
    this.#pipeline.freeQueued();
    if (this.#openBatch !== void 0) this.#buffers.free(this.#openBatch);
    this.#openBatch = void 0;
    this.#buffers.drain();
    this.#segments.release();
    const err = this.#failed ?? new PerCoreWalError("Closed", `Core ${this.coreId}'s log is closed`);
    this.#pipeline.waiters.rejectAll(err);
    if (this.#ownsIo) await this.#io.close();
  }
  /** Closes the log. */
  [Symbol.asyncDispose]() {
    return this.close();
  }
};

// src/error_data.ts
init_errors();
function errorToData(e) {
  if (e instanceof PerCoreWalError) {
    return {
      code: e.code,
      message: e.message,
      errno: e.errno,
      operation: e.operation,
      segment: e.segment,
      offset: e.offset,
      coreId: e.coreId
    };
  }
  return {
    code: e instanceof TypeError || e instanceof RangeError ? e.name : "Failed",
    message: String(e)
  };
}
function errorFromData(d) {
  if (d.code === "TypeError") return new TypeError(d.message);
  if (d.code === "RangeError") return new RangeError(d.message);
  return new PerCoreWalError(d.code, d.message, d);
}

// src/core_worker.ts
init_errors();

// src/io/faulty.ts
var FaultyBackend = class {
  #inner;
  #plan;
  #chains = 0;
  #prepareSyncs = 0;
  /** How many faults were injected. */
  injected = 0;
  /** Every data chain asked for, in order: its number and whether it ended with an fdatasync. */
  calls = [];
  /** Wraps `inner`, failing according to `plan`. */
  constructor(inner, plan) {
    this.#inner = inner;
    this.#plan = plan;
  }
  get kind() {
    return this.#inner.kind;
  }
  openFile(path, o) {
    if (this.#plan.refuseDirect && o.direct) throw errnoError(22, "open", {
      path
    });
    return this.#inner.openFile(path, o);
  }
  allocate(file, length) {
    return this.#inner.allocate(file, length);
  }
  async writeParts(file, parts, sync, purpose) {
    if (purpose === "prepare") {
      if (sync && ++this.#prepareSyncs === this.#plan.failPrepareAt) {
        this.injected++;
        throw errnoError(this.#plan.errno, "fdatasync", {
          path: file.path
        });
      }
      return this.#inner.writeParts(file, parts, sync, purpose);
    }
    const n = ++this.#chains;
    this.calls.push({
      chain: n,
      sync
    });
    const p = this.#plan;
    if (n === p.failWriteAt) {
      this.injected++;
      throw errnoError(p.errno, "write", {
        path: file.path,
        offset: parts[0]?.offset
      });
    }
    if (n === p.tearWriteAt) {
      this.injected++;
      const first = parts[0];
      const half = first.data.subarray(0, Math.floor(first.data.length / 2 / 512) * 512);
      if (half.length > 0) {
        await this.#inner.writeParts(file, [
          {
            data: half,
            offset: first.offset
          }
        ], false);
      }
      throw errnoError(p.errno, "write", {
        path: file.path,
        offset: first.offset + half.length
      });
    }
    if (n === p.failSyncAt) {
      this.injected++;
      await this.#inner.writeParts(file, parts, false);
      throw errnoError(p.errno, "fdatasync", {
        path: file.path
      });
    }
    return this.#inner.writeParts(file, parts, sync);
  }
  readAt(file, into, offset) {
    return this.#inner.readAt(file, into, offset);
  }
  truncate(file, length) {
    this.#inner.truncate(file, length);
  }
  closeFile(file) {
    this.#inner.closeFile(file);
  }
  syncDirectory(path) {
    this.#inner.syncDirectory(path);
  }
  allocBuffer(size) {
    return this.#inner.allocBuffer(size);
  }
  freeBuffer(buffer) {
    this.#inner.freeBuffer(buffer);
  }
  supportsDirect(dir) {
    return !this.#plan.refuseDirect && this.#inner.supportsDirect(dir);
  }
  close() {
    return this.#inner.close();
  }
};

// src/shared.ts
init_errors();

// src/io/bell.ts
init_libc();
init_errors();
function createBell() {
  const fd = libc().eventfd(0, EFD_CLOEXEC);
  if (fd < 0) throw errnoError(-lastErrno(), "eventfd");
  return fd;
}
var _writer;
function ringBell(fd) {
  if (_writer === void 0) {
    _writer = null;
    if (Deno.permissions.querySync({
      name: "ffi"
    }).state === "granted") {
      try {
        const write = libc().write;
        const one = new Uint8Array(8);
        one[0] = 1;
        _writer = (fd2) => Number(write(fd2, one, 8n)) === 8;
      } catch (e) {
        if (!(e instanceof PerCoreWalError)) throw e;
      }
    }
  }
  return _writer !== null && _writer(fd);
}
function closeBell(fd) {
  if (libc().close(fd) < 0) throw errnoError(-lastErrno(), "close", {
    path: "bell eventfd"
  });
}

// src/shared.ts
var IntSlot = {
  /** {@linkcode CoreState}. */
  STATE: 0,
  /** Bumped (and notified) by producers to wake a sleeping Worker. */
  DOORBELL: 1,
  /** How the Worker sleeps ({@linkcode Sleep}); `Sleep.Awake` while it works. */
  SLEEPING: 2,
  /** Length of the JSON error in the error area. */
  ERROR_LENGTH: 3,
  /** The eventfd a Worker sleeping in the kernel is woken by, plus one (0: none). */
  BELL: 4,
  /** Producers between seeing `Sleep.Kernel` and writing the bell (the fd stays open meanwhile). */
  RINGING: 5,
  /** Messages posted to the Worker (it reads its port until it has handled as many). */
  MAIL: 6,
  /** Set by a producer thread that cannot write the bell (no FFI there): the Worker stops using it. */
  BELL_REFUSED: 7
};
var Sleep = {
  Awake: 0,
  /** In `Atomics.wait` or `Atomics.waitAsync` on the doorbell: `Atomics.notify` wakes it. */
  Atomics: 1,
  /** In `io_uring_enter`, waiting for a completion: writing the bell eventfd wakes it. */
  Kernel: 2
};
var BigSlot = {
  /** Sequence the next producer to append claims (one past the last claimed). */
  NEXT_SEQUENCE: 0,
  /** Last durable sequence. */
  DURABLE: 1,
  /** Highest sequence a `sync()` asked for. */
  SYNC_REQUEST: 2,
  /** Segment and offset after the last record the Worker took in. */
  POS_SEGMENT: 3,
  POS_OFFSET: 4,
  /** Sequence of the last record the Worker took in. */
  POS_SEQUENCE: 5,
  /** Segment and offset after the last durable record. */
  SYNCED_SEGMENT: 6,
  SYNCED_OFFSET: 7,
  /** Seqlock of DURABLE and the synced segment and offset: odd while they change. */
  SYNCED_VERSION: 8
};
var MetricSlot = {
  RECORDS: 0,
  BYTES: 1,
  BATCHES: 2,
  FDATASYNCS: 3,
  LAT_COUNT: 4,
  LAT_P50: 5,
  LAT_P99: 6,
  LAT_MAX: 7,
  IN_FLIGHT: 8,
  PENDING_BYTES: 9,
  /** Sum of the batch latencies (µs). */
  LAT_SUM: 10,
  /** First of the cumulative latency bucket counts (one per `LATENCY_BUCKET_BOUNDS_US`). */
  LAT_BUCKETS: 16
};
var CoreState = {
  Starting: 0,
  Running: 1,
  Failed: 2,
  Closed: 3,
  Closing: 4,
  Held: 5
};
var INT_BYTES = 64;
var BIG_BYTES = 128;
var METRICS_OFFSET = INT_BYTES + BIG_BYTES;
var METRICS_BYTES = 384;
var ERROR_OFFSET = METRICS_OFFSET + METRICS_BYTES;
var ERROR_BYTES = 2048;
var CONTROL_BYTES = ERROR_OFFSET + ERROR_BYTES;
var Control = class {
  /** The shared memory. */
  sab;
  /** Int32 slots ({@linkcode IntSlot}). */
  i32;
  /** BigInt64 slots ({@linkcode BigSlot}). */
  b64;
  /** Metrics ({@linkcode MetricSlot}). */
  metrics;
  #error;
  /** Views over `sab`, or a new control block. */
  constructor(sab = new SharedArrayBuffer(CONTROL_BYTES)) {
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, INT_BYTES / 4);
    this.b64 = new BigInt64Array(sab, INT_BYTES, BIG_BYTES / 8);
    this.metrics = new Float64Array(sab, METRICS_OFFSET, METRICS_BYTES / 8);
    this.#error = new Uint8Array(sab, ERROR_OFFSET, ERROR_BYTES);
  }
  /** The core's state. */
  get state() {
    return Atomics.load(this.i32, IntSlot.STATE);
  }
  /** Records why the core failed (readable from any thread), then marks it failed and wakes everyone. */
  fail(error) {
    if (this.state === CoreState.Failed) return;
    const json = new TextEncoder().encode(JSON.stringify(errorToData(error)));
    const n = Math.min(json.length, ERROR_BYTES);
    this.#error.set(json.subarray(0, n));
    Atomics.store(this.i32, IntSlot.ERROR_LENGTH, n);
    Atomics.store(this.i32, IntSlot.STATE, CoreState.Failed);
    this.wakeAll();
  }
  /** The error the core failed with (rebuilt from shared memory). */
  error() {
    const n = Atomics.load(this.i32, IntSlot.ERROR_LENGTH);
    let data;
    try {
      data = JSON.parse(new TextDecoder().decode(this.#error.slice(0, n)));
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      return new PerCoreWalError("Failed", "The core failed (its error did not fit shared memory)");
    }
    return errorFromData(data);
  }
  /** Posts `message` to the core's Worker and wakes it to read it (it counts `IntSlot.MAIL`). */
  post(worker2, message) {
    worker2.postMessage(message);
    Atomics.add(this.i32, IntSlot.MAIL, 1);
    this.ring();
  }
  /** Wakes the Worker and every thread waiting for durability. */
  wakeAll() {
    Atomics.add(this.i32, IntSlot.DOORBELL, 1);
    Atomics.notify(this.i32, IntSlot.DOORBELL);
    if (Atomics.load(this.i32, IntSlot.SLEEPING) === Sleep.Kernel) this.#ringBell();
    Atomics.notify(this.b64, BigSlot.DURABLE);
  }
  /**
   * Wakes the Worker if it sleeps. The first producer to see it asleep clears the flag and
   * rings; the others need not: the Worker looks at every ring and request once awake.
   */
  ring() {
    const s = Atomics.load(this.i32, IntSlot.SLEEPING);
    if (s === Sleep.Atomics) {
      if (Atomics.compareExchange(this.i32, IntSlot.SLEEPING, Sleep.Atomics, Sleep.Awake) === s) {
        Atomics.add(this.i32, IntSlot.DOORBELL, 1);
        Atomics.notify(this.i32, IntSlot.DOORBELL);
      }
    } else if (s === Sleep.Kernel) {
      this.#ringBell();
    }
  }
  /**
   * Wakes a Worker that sleeps in the kernel by writing its bell eventfd (one system call).
   * `IntSlot.RINGING` counts the producers in here, so that the Worker never closes the fd while one
   * may still write to it (the number could by then name another file).
   */
  #ringBell() {
    const i32 = this.i32;
    Atomics.add(i32, IntSlot.RINGING, 1);
    try {
      if (Atomics.compareExchange(i32, IntSlot.SLEEPING, Sleep.Kernel, Sleep.Awake) !== Sleep.Kernel) {
        return;
      }
      const fd = Atomics.load(i32, IntSlot.BELL) - 1;
      if (fd < 0 || !ringBell(fd)) Atomics.store(i32, IntSlot.BELL_REFUSED, 1);
    } finally {
      Atomics.sub(i32, IntSlot.RINGING, 1);
    }
  }
};
var SOFT_RING_BYTES = 1 << 20;
var RING_TAIL_SLOT = 0;
var RING_HEAD_SLOT = 1;
var RING_OWNER_SLOT = 2;
var RING_WAITING_SLOT = 3;
var RING_HEADER = 64;
var WRAP = 4294967295;
var ProducerRing = class {
  /** The shared memory: a 64-byte header, then the data. */
  sab;
  /** Header slots: tail, head, owner, waiting. */
  ctl;
  /** The data area. */
  data;
  /** A DataView over the data area. */
  view;
  /** Data bytes (a power of two). */
  size;
  #mask;
  // The producer owns the tail: it keeps its own copy, and a head it read last, which is
  // behind the real one (the consumer only moves it forward), so the room it shows is safe.
  #tail = -1;
  #head = 0;
  /**
   * Records go back to the start of the data area once past this many bytes, when the consumer
   * has taken everything: a producer the Worker keeps up with cycles through memory that stays
   * in the CPU caches; the rest of the buffer takes bursts.
   */
  #soft;
  /** Where the producer next looks whether it can go back to the start (every soft / 16). */
  #softEnd;
  #pendingSkip = 0;
  /** The record reserved last went back to the start of an empty ring early (see reserve()). */
  #skipHead = false;
  /**
   * Views over `sab`, or a new ring of `dataBytes` (rounded up to a power of two). A producer
   * goes back to the start past `softBytes` when it can (1 MiB; see `#soft`).
   */
  constructor(sabOrSize, softBytes = SOFT_RING_BYTES) {
    const sab = typeof sabOrSize === "number" ? new SharedArrayBuffer(RING_HEADER + 2 ** Math.ceil(Math.log2(Math.max(sabOrSize, 4096)))) : sabOrSize;
    this.sab = sab;
    this.ctl = new Int32Array(sab, 0, RING_HEADER / 4);
    this.size = sab.byteLength - RING_HEADER;
    this.#mask = this.size - 1;
    this.data = new Uint8Array(sab, RING_HEADER, this.size);
    this.view = new DataView(sab, RING_HEADER, this.size);
    this.#soft = this.#softEnd = Math.min(this.size, softBytes);
  }
  /** Claims the ring for the calling thread; false if another thread has it. */
  claim() {
    return Atomics.compareExchange(this.ctl, RING_OWNER_SLOT, 0, 1) === 0;
  }
  /** The producer is done with the ring: the Worker drops it once it is empty. */
  release() {
    Atomics.store(this.ctl, RING_OWNER_SLOT, 2);
  }
  /** Whether the producer released the ring and every record in it was taken. */
  get finished() {
    return Atomics.load(this.ctl, RING_OWNER_SLOT) === 2 && this.usedBytes === 0;
  }
  // --- producer side
  /** Bytes to skip before a record of `length` bytes at `phys`: what is left, or 0. */
  #skip(phys, length) {
    const rest = this.size - phys;
    return length > rest ? rest : 0;
  }
  /** Whether the records go on at the start of the data area from `phys`. */
  #wrapsAt(phys) {
    return this.size - phys < 8 || this.view.getUint32(phys + R_LENGTH, true) === WRAP;
  }
  /**
   * Reserves `length` bytes contiguous in the data area: returns their offset, or -1 if the
   * ring is full. Writes a wrap marker when the record does not fit before the end.
   */
  reserve(length) {
    if (this.#tail < 0) this.#tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    const tail = this.#tail;
    const phys = tail & this.#mask;
    let skip = this.#skip(phys, length);
    let early2 = false;
    if (skip === 0 && phys + length > this.#softEnd && length <= phys) {
      this.#head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
      if (this.#head === tail) {
        skip = this.size - phys;
        early2 = true;
      } else {
        this.#softEnd = phys + length + (this.#soft >>> 4);
      }
    }
    if ((tail - this.#head >>> 0) + skip + length > this.size) {
      this.#head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
      if ((tail - this.#head >>> 0) + skip + length > this.size) return -1;
    }
    this.#pendingSkip = skip;
    this.#skipHead = early2;
    if (skip === 0) return phys;
    if (skip >= 8) this.view.setUint32(phys + R_LENGTH, WRAP, true);
    this.#softEnd = this.#soft;
    return 0;
  }
  /** Publishes the record reserved last (of `length` bytes). */
  publish(length) {
    const from = this.#tail;
    this.#tail = from + this.#pendingSkip + length >>> 0;
    Atomics.store(this.ctl, RING_TAIL_SLOT, this.#tail | 0);
    if (this.#skipHead) {
      this.#skipHead = false;
      const past = from + this.#pendingSkip >>> 0;
      if (Atomics.compareExchange(this.ctl, RING_HEAD_SLOT, from | 0, past | 0) === (from | 0)) {
        this.#head = past;
      }
    }
  }
  /** Whether `length` more bytes could be reserved now. */
  fits(length) {
    const tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    const used = tail - (Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0) >>> 0;
    return used + this.#skip(tail & this.#mask, length) + length <= this.size;
  }
  /** Blocks (Worker threads only) until the consumer frees space or `timeoutMs` passes. */
  waitForSpace(timeoutMs) {
    const head = Atomics.load(this.ctl, RING_HEAD_SLOT);
    Atomics.store(this.ctl, RING_WAITING_SLOT, 1);
    Atomics.wait(this.ctl, RING_HEAD_SLOT, head, timeoutMs);
  }
  /** Resolves when the consumer frees space or `timeoutMs` passes. */
  async waitForSpaceAsync(timeoutMs) {
    const head = Atomics.load(this.ctl, RING_HEAD_SLOT);
    Atomics.store(this.ctl, RING_WAITING_SLOT, 1);
    const r = Atomics.waitAsync(this.ctl, RING_HEAD_SLOT, head, timeoutMs);
    if (r.async) await keepAlive(r.value, timeoutMs);
  }
  // --- consumer side
  /**
   * Offers the published records from the head to `take(start, end)`, one contiguous stretch
   * of the data area at a time (a wrap splits them). `take` returns the record boundary it
   * consumed up to; what it consumed is freed. Stops when it consumes less than offered, unless
   * it stopped at a wrap marker.
   */
  consume(take) {
    let head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
    const tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    const start = head;
    try {
      while (head !== tail) {
        const phys = head & this.#mask;
        if (this.#wrapsAt(phys)) {
          head = head + this.size - phys >>> 0;
          continue;
        }
        const end = phys + Math.min(tail - head >>> 0, this.size - phys);
        const reached = take(phys, end);
        head = head + reached - phys >>> 0;
        if (reached === phys || reached < end && !this.#wrapsAt(reached)) break;
      }
    } finally {
      if (head !== start) {
        Atomics.store(this.ctl, RING_HEAD_SLOT, head | 0);
        if (Atomics.load(this.ctl, RING_WAITING_SLOT) !== 0) {
          Atomics.store(this.ctl, RING_WAITING_SLOT, 0);
          Atomics.notify(this.ctl, RING_HEAD_SLOT);
        }
      }
    }
  }
  /** Offset of the next record in the data area, or -1 if the ring is empty. */
  peek() {
    let head = Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0;
    const tail = Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0;
    if (head === tail) return -1;
    let phys = head & this.#mask;
    if (this.#wrapsAt(phys)) {
      head = head + this.size - phys >>> 0;
      Atomics.store(this.ctl, RING_HEAD_SLOT, head | 0);
      if (head === tail) return -1;
      phys = 0;
    }
    return phys;
  }
  /** Sequence of the record at `offset` (from {@linkcode peek}). */
  sequenceAt(offset) {
    return recordSequence(this.view, offset);
  }
  /** Bytes published and not yet consumed. */
  get usedBytes() {
    return (Atomics.load(this.ctl, RING_TAIL_SLOT) >>> 0) - (Atomics.load(this.ctl, RING_HEAD_SLOT) >>> 0) >>> 0;
  }
};
var _waiters = 0;
var _timer;
async function keepAlive(p, _timeoutMs) {
  if (_waiters++ === 0) _timer = setInterval(() => {
  }, 6e4);
  try {
    return await p;
  } finally {
    if (--_waiters === 0) clearInterval(_timer);
  }
}

// src/core_worker.ts
var METRICS_PERIOD_MS = 20;
var IDLE_WAIT_MS = 50;
var BUSY_YIELD_MS = 2;
var SETTLE_TICKS = 4;
var CLOSE_BELL_WAIT_MS = 1e3;
var CLOSE_STALL_MS = 5e3;
var mailRead = 0;
var CoreWorker = class {
  log;
  ctl;
  rings;
  #inner;
  closing = false;
  #requested = 0;
  #lastMetrics = 0;
  #yield = new MessageChannel();
  #resume;
  /** Holds the event loop open while the Worker runs: a timer per sleep would cost more. */
  #alive = setInterval(() => {
  }, 36e5);
  /** The eventfd producers write to wake the Worker from a kernel sleep; -1 if none. */
  #bell;
  /** The kernel sleep turned out unusable (a producer thread without FFI, a broken bell). */
  #noKernelSleep = false;
  #idleWaitMs;
  #lastYield = 0;
  /** Publishes the latency percentiles at the end of the period when they are behind. */
  #staleTimer;
  /** When the Worker started waiting for a sequence that later ones were published after. */
  #gapSince;
  constructor(log, ctl, ring, inner, idleWaitMs = IDLE_WAIT_MS) {
    this.log = log;
    this.#idleWaitMs = idleWaitMs;
    this.#bell = log.canWaitIdle ? createBell() : -1;
    Atomics.store(ctl.i32, IntSlot.BELL, this.#bell + 1);
    this.ctl = ctl;
    this.rings = [
      ring
    ];
    this.#inner = inner;
    this.#yield.port1.onmessage = () => this.#resume?.();
  }
  /** Takes records from the rings, in sequence order, into the log. */
  drain() {
    const log = this.log;
    const first = log.nextSequence;
    let progressed = true;
    try {
      while (progressed && log.nextSequence - first < 65536) {
        progressed = false;
        for (const r of this.rings) {
          const { data, view } = r;
          const before = log.nextSequence;
          let us = -1;
          r.consume((start, end) => {
            if (us < 0) us = Math.round((performance.timeOrigin + performance.now()) * 1e3);
            return log.appendFrom(data, view, start, end, us);
          });
          if (log.nextSequence !== before) progressed = true;
        }
      }
    } finally {
      if (log.nextSequence > first) {
        const p = log.position;
        const b = this.ctl.b64;
        Atomics.store(b, BigSlot.POS_SEGMENT, BigInt(p.segment));
        Atomics.store(b, BigSlot.POS_OFFSET, BigInt(p.offset));
        Atomics.store(b, BigSlot.POS_SEQUENCE, BigInt(p.sequence));
      }
      if (this.rings.some((r) => r.finished)) {
        this.rings = this.rings.filter((r, i) => i === 0 || !r.finished);
      }
    }
    return log.nextSequence - first;
  }
  /** Asks the log to flush what a `sync()` waits for. */
  requestSyncs() {
    const req = Number(Atomics.load(this.ctl.b64, BigSlot.SYNC_REQUEST));
    const target = Math.min(req, this.log.sequence);
    if (target > this.#requested) {
      this.#requested = target;
      this.log.waitDurable(target).catch((e) => {
        if (this.log.failure === void 0 && e instanceof PerCoreWalError && e.code !== "Closed") {
          this.ctl.fail(e);
          scope.postMessage({
            type: "failed",
            error: errorToData(e)
          });
        }
      });
    }
  }
  /** Whether a ring holds the next record. */
  #ready() {
    const next = this.log.nextSequence;
    for (const r of this.rings) {
      const off = r.peek();
      if (off >= 0 && r.sequenceAt(off) === next) return true;
    }
    return false;
  }
  /** Everything claimed has been taken in. */
  drained() {
    return this.log.nextSequence >= Number(Atomics.load(this.ctl.b64, BigSlot.NEXT_SEQUENCE));
  }
  /**
   * Waits for a producer's record or `sync()`, a completion or a message, whichever comes
   * first. Three ways, fastest first: in the kernel (the io_uring backend; producers write the
   * bell eventfd), in `Atomics.wait` (the sync backend, whose operations have completed when
   * they return), or on the event loop (`Atomics.waitAsync`; completions through the eventfd).
   * The first two block the thread, for at most {@linkcode IDLE_WAIT_MS}; after a wait that
   * timed out the event loop runs (timers).
   */
  async sleep() {
    if (this.log.preparing) await this.yield();
    const i32 = this.ctl.i32;
    const how = this.#sleepMode();
    Atomics.store(i32, IntSlot.SLEEPING, how === "kernel" ? Sleep.Kernel : Sleep.Atomics);
    const bell = Atomics.load(i32, IntSlot.DOORBELL);
    this.requestSyncs();
    let woken = true;
    if (!this.#ready() && !(this.closing && this.drained()) && !this.#mailWaiting()) {
      if (how === "kernel") {
        const r = this.log.waitIdle(this.#bell, this.#waitMs());
        if (r === "unavailable") this.#noKernelSleep = true;
        woken = r === "woken";
      } else if (how === "atomics") {
        woken = Atomics.wait(i32, IntSlot.DOORBELL, bell, this.#waitMs()) !== "timed-out";
      } else {
        this.log.setOwnerIdle(true);
        const r = Atomics.waitAsync(i32, IntSlot.DOORBELL, bell, 200);
        if (r.async) await r.value;
        this.log.setOwnerIdle(false);
      }
    }
    Atomics.store(i32, IntSlot.SLEEPING, Sleep.Awake);
    if (!woken) await this.yield();
  }
  /** Whether the Worker sleeps in the kernel (then it waits there for completions too). */
  get sleepsInKernel() {
    return this.#bell >= 0 && !this.#noKernelSleep;
  }
  #sleepMode() {
    if (this.sleepsInKernel) {
      if (Atomics.load(this.ctl.i32, IntSlot.BELL_REFUSED) === 0) return "kernel";
      this.#noKernelSleep = true;
    }
    return this.log.backend === "sync" ? "atomics" : "loop";
  }
  /**
   * How long a blocking wait may last: until the latency figures are due at the latest, and
   * 1 ms while the log's `syncDelayMs` flush is due (timers need the event loop).
   */
  #waitMs() {
    let ms = this.#idleWaitMs;
    if (this.#staleTimer !== void 0) ms = Math.min(ms, this.#metricsDueIn(performance.now()));
    return this.log.waitBound(Math.max(0, ms));
  }
  /** Whether a message was posted that this Worker has not handled yet. */
  #mailWaiting() {
    return Atomics.load(this.ctl.i32, IntSlot.MAIL) !== mailRead;
  }
  /** Lets completions, timers and messages run on the event loop. */
  yield() {
    this.#lastYield = performance.now();
    return new Promise((resolve) => {
      this.#resume = resolve;
      this.#yield.port2.postMessage(0);
    });
  }
  /** Lets the promise handlers that completions queued run (a chain resolves, then CoreLog). */
  async #settle() {
    for (let i = 0; i < SETTLE_TICKS; i++) await null;
  }
  publishDurable(seq, segment, offset) {
    const b = this.ctl.b64;
    Atomics.add(b, BigSlot.SYNCED_VERSION, 1n);
    Atomics.store(b, BigSlot.SYNCED_SEGMENT, BigInt(segment));
    Atomics.store(b, BigSlot.SYNCED_OFFSET, BigInt(offset));
    Atomics.store(b, BigSlot.DURABLE, BigInt(seq));
    Atomics.add(b, BigSlot.SYNCED_VERSION, 1n);
    Atomics.notify(b, BigSlot.DURABLE);
    this.publishMetrics();
  }
  /** Milliseconds from `now` until the latency figures are a period old. */
  #metricsDueIn(now) {
    return this.#lastMetrics + METRICS_PERIOD_MS + 1 - now;
  }
  /** Copies the counters to shared memory; the latency percentiles at most every 20 ms. */
  publishMetrics(force = false) {
    const m = this.log.metrics(false);
    const f = this.ctl.metrics;
    f[MetricSlot.RECORDS] = m.recordsAppended;
    f[MetricSlot.BYTES] = m.bytesAppended;
    f[MetricSlot.BATCHES] = m.batches;
    f[MetricSlot.FDATASYNCS] = m.fdatasyncs;
    f[MetricSlot.IN_FLIGHT] = m.inFlightBatches;
    f[MetricSlot.PENDING_BYTES] = m.pendingBytes;
    const now = performance.now();
    if (!force && now - this.#lastMetrics <= METRICS_PERIOD_MS) {
      this.#staleTimer ??= setTimeout(() => {
        this.#staleTimer = void 0;
        this.publishMetrics(true);
      }, this.#metricsDueIn(now));
    } else {
      clearTimeout(this.#staleTimer);
      this.#staleTimer = void 0;
      this.#lastMetrics = now;
      const l = this.log.metrics().syncLatency;
      f[MetricSlot.LAT_COUNT] = l.count;
      f[MetricSlot.LAT_P50] = l.p50Us;
      f[MetricSlot.LAT_P99] = l.p99Us;
      f[MetricSlot.LAT_MAX] = l.maxUs;
      const h = this.log.syncLatencyBuckets();
      f[MetricSlot.LAT_SUM] = h.sumUs;
      f.set(h.counts, MetricSlot.LAT_BUCKETS);
    }
  }
  /**
   * A producer thread that dies between claiming a sequence and publishing its record stops
   * its core (records are written in sequence order): after 10 s of records waiting behind
   * such a gap, the core fails with a clear error instead of hanging.
   */
  #checkGap() {
    if (this.#ready() || !this.rings.some((r) => r.usedBytes > 0)) {
      this.#gapSince = void 0;
      return;
    }
    const now = performance.now();
    this.#gapSince ??= now;
    if (now - this.#gapSince > 1e4) {
      throw new PerCoreWalError("Failed", `Core ${this.log.coreId}: sequence ${Number(this.log.sequence) + 1} was claimed but never published for 10 s while later records wait (a producer thread died mid-append?)`, {
        coreId: this.log.coreId
      });
    }
  }
  async run() {
    this.log.setOwnerIdle(false);
    try {
      await this.#loop();
    } finally {
      this.log.setOwnerIdle(true);
    }
  }
  async #loop() {
    let stalledSince;
    this.#lastYield = performance.now();
    while (true) {
      let n = 0;
      const before = this.log.nextSequence;
      try {
        n = this.drain();
      } catch (e) {
        if (!(e instanceof PerCoreWalError) || e.code !== "Backpressure") throw e;
        n = this.log.nextSequence - before;
        const coreId = this.log.coreId;
        _event({
          type: "backpressureBegan",
          coreId,
          cause: "maxPendingBytes",
          pendingBytes: this.log.metrics(false).pendingBytes
        });
        this.log.setOwnerIdle(true);
        await this.log.sync().catch(() => {
        });
        this.log.setOwnerIdle(false);
        _event({
          type: "backpressureEnded",
          coreId,
          cause: "maxPendingBytes"
        });
      }
      this.requestSyncs();
      this.log.pollCompletions();
      await this.#settle();
      if (this.log.failure !== void 0) return;
      if (this.closing && this.drained()) return;
      if (this.#mailWaiting() || performance.now() - this.#lastYield >= BUSY_YIELD_MS) {
        await this.yield();
      }
      if (n > 0) {
        stalledSince = void 0;
        continue;
      }
      this.publishMetrics();
      this.#checkGap();
      if (this.closing) {
        const now = performance.now();
        stalledSince ??= now;
        if (now - stalledSince > CLOSE_STALL_MS) {
          throw new PerCoreWalError("Failed", `Core ${this.log.coreId} closed with sequence ${Number(this.log.sequence) + 1} claimed but never published`);
        }
      }
      await this.sleep();
    }
  }
  async close() {
    clearInterval(this.#alive);
    await this.#closeBell();
    clearTimeout(this.#staleTimer);
    this.publishMetrics(true);
    this.#yield.port1.close();
    this.#yield.port2.close();
    try {
      await this.log.close();
    } finally {
      await this.#inner?.close();
    }
  }
  /**
   * Closes the bell once no producer can still be writing to it. A producer thread terminated
   * while ringing never says it is done: after a second the bell is left open (one eventfd),
   * since closing it is what could be unsafe.
   */
  async #closeBell() {
    if (this.#bell < 0) return;
    const i32 = this.ctl.i32;
    this.#noKernelSleep = true;
    Atomics.store(i32, IntSlot.BELL, 0);
    const giveUp = performance.now() + CLOSE_BELL_WAIT_MS;
    while (Atomics.load(i32, IntSlot.RINGING) !== 0) {
      if (performance.now() >= giveUp) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    try {
      closeBell(this.#bell);
    } catch (e) {
      if (!(e instanceof PerCoreWalError)) throw e;
    }
  }
};
var scope = globalThis;
function _event(event) {
  scope.postMessage({
    type: "event",
    event
  });
}
var worker;
var running;
var early = [];
function _pin(coreId) {
  Promise.resolve().then(() => (init_libc(), libc_exports)).then(({ libc: libc2 }) => {
    const cpus = navigator.hardwareConcurrency;
    const mask = new Uint8Array(128);
    const cpu = coreId % cpus;
    mask[cpu >> 3] |= 1 << (cpu & 7);
    libc2().sched_setaffinity(0, 128n, mask);
  }).catch(() => {
  });
}
async function init(m) {
  const config = new PerCoreWalConfig(m.baseDir, m.numCores, m.options);
  const ctl = new Control(m.control);
  if (config.options.pinWorkers) _pin(m.coreId);
  let inner;
  let backend;
  let fallbackReason;
  if (m.backendModule !== void 0) {
    const mod = await import(m.backendModule.url);
    inner = backend = await mod.createBackend({
      coreId: m.coreId,
      data: m.backendModule.data,
      replaceDurabilityOps,
      errorFromData
    });
  } else if (m.faults !== void 0) {
    const made = createBackend(config.options);
    inner = made.backend;
    backend = new FaultyBackend(inner, m.faults);
    fallbackReason = made.fallbackReason;
  }
  const log = await CoreLog.open(config, m.coreId, {
    backend,
    minEpoch: m.minEpoch,
    // Stop polling for a sync's completion as soon as a producer has appended more, and at
    // once when the Worker sleeps in the kernel: the completion wakes it there.
    completionSpinStop: () => worker?.sleepsInKernel === true || worker?.drained() === false,
    // The run loop polls completions while busy (see CoreWorker.run).
    lazyCompletionWait: true,
    onDurable: (seq2, pos) => worker?.publishDurable(seq2, pos.segment, pos.offset),
    // The manager reports the fallback once, for every core.
    onEvent: (event) => {
      if (event.type !== "backendFallback") _event(event);
    },
    onFail: (e) => {
      ctl.fail(e);
      scope.postMessage({
        type: "failed",
        error: errorToData(e)
      });
    }
  }).catch(async (e) => {
    await inner?.close();
    throw e;
  });
  const w = worker = new CoreWorker(log, ctl, new ProducerRing(m.ring), inner, m.idleWaitMs);
  w.rings.push(...early.splice(0));
  const b = ctl.b64;
  const seq = BigInt(log.sequence);
  Atomics.store(b, BigSlot.NEXT_SEQUENCE, seq + 1n);
  Atomics.store(b, BigSlot.DURABLE, BigInt(log.durableSequence));
  Atomics.store(b, BigSlot.SYNC_REQUEST, seq);
  const p = log.position;
  Atomics.store(b, BigSlot.POS_SEGMENT, BigInt(p.segment));
  Atomics.store(b, BigSlot.POS_OFFSET, BigInt(p.offset));
  Atomics.store(b, BigSlot.POS_SEQUENCE, seq);
  const sp = log.syncedPosition;
  Atomics.store(b, BigSlot.SYNCED_SEGMENT, BigInt(sp.segment));
  Atomics.store(b, BigSlot.SYNCED_OFFSET, BigInt(sp.offset));
  w.publishMetrics(true);
  Atomics.store(ctl.i32, IntSlot.STATE, CoreState.Running);
  running = w.run().catch((e) => {
    const err = e instanceof PerCoreWalError ? e : new PerCoreWalError("Failed", `Core ${m.coreId}'s Worker: ${e}`);
    ctl.fail(err);
    scope.postMessage({
      type: "failed",
      error: errorToData(err)
    });
  });
  scope.postMessage({
    type: "ready",
    sequence: Number(seq),
    epoch: log.epoch,
    backend: log.backend,
    writeMode: log.writeMode,
    fallbackReason: log.fallbackReason ?? fallbackReason
  });
}
async function close() {
  const w = worker;
  let error;
  if (w !== void 0) {
    w.closing = true;
    Atomics.add(w.ctl.i32, IntSlot.DOORBELL, 1);
    Atomics.notify(w.ctl.i32, IntSlot.DOORBELL);
    await running;
    try {
      await w.close();
    } catch (e) {
      error = errorToData(e);
    }
    if (w.ctl.state !== CoreState.Failed) Atomics.store(w.ctl.i32, IntSlot.STATE, CoreState.Closed);
    w.ctl.wakeAll();
  }
  scope.postMessage({
    type: "closed",
    error
  });
}
preloadNative();
clearTimeout(setTimeout(() => {
}, 0));
scope.onmessage = (e) => {
  const m = e.data;
  mailRead++;
  switch (m.type) {
    case "init":
      init(m).catch((err) => scope.postMessage({
        type: "error",
        error: errorToData(err)
      }));
      break;
    case "addRing":
      if (worker === void 0) {
        early.push(new ProducerRing(m.ring));
      } else {
        worker.rings.push(new ProducerRing(m.ring));
        Atomics.add(worker.ctl.i32, IntSlot.DOORBELL, 1);
        Atomics.notify(worker.ctl.i32, IntSlot.DOORBELL);
      }
      break;
    case "close":
      close();
      break;
  }
};
