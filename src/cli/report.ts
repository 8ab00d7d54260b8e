/**
 * The read-only reports of the `wal` tool: `inspect`, `verify`, `stats` and `checkpoints`, all
 * over one {@linkcode scanDirectory} of the WAL directory.
 *
 * @module
 */

import type { PerCoreWalConfig } from "../config.ts";
import { basename } from "./paths.ts";
import { jsonLine, sizeText, timeText } from "./display.ts";
import { Progress } from "./progress.ts";
import {
  type CheckpointScan,
  type Damage,
  type DirectoryScan,
  scanDirectory,
  type SegmentScan,
} from "./scan.ts";

/** Options shared by the reports. */
export interface ReportOptions {
  /** One JSON object per line instead of text. */
  json: boolean;
  /** Where the checkpoints are. */
  checkpointDir?: string;
  /** For `verify`: a torn tail is damage too. */
  strict?: boolean;
}

/** Scans with a progress bar on a terminal. */
async function _scan(label: string, config: PerCoreWalConfig, o: ReportOptions) {
  let bar: Progress | undefined;
  try {
    return await scanDirectory(config, {
      checkpointDir: o.checkpointDir,
      onProgress: (done, total) => {
        bar ??= new Progress(label, total);
        bar.update(done);
      },
    });
  } finally {
    bar?.close();
  }
}

/** A damage as the line `verify` prints: file, offset, what (and the segments of a crash tail). */
export function damageText(d: Damage): string {
  const more = d.tailSegments === undefined || d.tailSegments.length === 0
    ? ""
    : `; part of the crash tail too: ${d.tailSegments.map(basename).join(", ")}`;
  return `${d.path}: ${d.code} at offset ${d.offset}: ${d.reason}${more}`;
}

function _range(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? "-" : a === b ? `${a}` : `${a}..${b}`;
}

function _segmentObject(s: SegmentScan) {
  return {
    kind: "segment",
    core: s.coreId,
    index: s.index,
    file: s.path,
    sizeBytes: s.fileSizeBytes,
    state: s.state,
    header: s.header === undefined ? null : {
      firstSequence: s.header.firstSequence,
      epoch: s.header.epoch,
      createdAt: timeText(s.header.createdAtNs),
      salt: `0x${s.header.salt.toString(16).padStart(8, "0")}`,
      version: s.header.version,
    },
    entries: s.entries,
    firstSequence: s.firstSequence ?? null,
    lastSequence: s.lastSequence ?? null,
    minEpoch: s.minEpoch ?? null,
    maxEpoch: s.maxEpoch ?? null,
    validEndOffset: s.validEndOffset,
    preallocatedBytes: s.preallocatedBytes,
    damage: s.damage,
    tornTail: s.torn ?? null,
    crashTail: s.crashTail ?? null,
  };
}

function _coreSummary(coreId: number, segs: SegmentScan[]) {
  const withEntries = segs.filter((s) => s.entries > 0);
  const epochs = withEntries.flatMap((s) => [s.minEpoch!, s.maxEpoch!]);
  return {
    kind: "core",
    core: coreId,
    segments: segs.length,
    entries: segs.reduce((n, s) => n + s.entries, 0),
    firstSequence: withEntries[0]?.firstSequence ?? null,
    lastSequence: withEntries.at(-1)?.lastSequence ?? null,
    minEpoch: epochs.length === 0 ? null : epochs.reduce((a, b) => (a < b ? a : b)),
    maxEpoch: epochs.length === 0 ? null : epochs.reduce((a, b) => (a > b ? a : b)),
    sizeBytes: segs.reduce((n, s) => n + s.fileSizeBytes, 0),
    validBytes: segs.reduce((n, s) => n + s.validEndOffset, 0),
  };
}

function _directoryObject(scan: DirectoryScan) {
  const c = scan.config;
  return {
    kind: "directory",
    dir: c.baseDir,
    cores: c.numCores,
    segmentPattern: c.options.segmentPattern,
    checkpointDir: scan.checkpointDir,
    checkpoints: scan.checkpoints.filter((k) => !k.incomplete && !k.foreign).length,
    damage: scan.damage.length,
    tornTails: scan.torn.length,
  };
}

function _checkpointObject(k: CheckpointScan) {
  const m = k.meta;
  return {
    kind: "checkpoint",
    path: k.path,
    id: m?.id ?? null,
    status: k.incomplete
      ? "incomplete"
      : k.foreign
      ? "foreign"
      : !k.valid
      ? "invalid"
      : k.used
      ? "used"
      : "valid",
    reason: k.reason ?? null,
    epoch: m?.epoch ?? null,
    createdAt: m?.createdAt.toISOString() ?? null,
    previousId: m?.previousId ?? null,
    stateEntries: m?.stateEntries ?? null,
    entriesMerged: m?.entriesMerged ?? null,
    hasAppState: m?.hasAppState ?? null,
    offsets: m?.offsets ?? null,
    watermark: m?.watermark ?? null,
    walPositions: m?.walPositions ?? null,
    files: m?.files ?? null,
  };
}

/** `wal inspect`: segments per core, headers, counts, ranges, sizes, damage. Exit 0 (1 on damage). */
export async function inspect(config: PerCoreWalConfig, o: ReportOptions): Promise<number> {
  const scan = await _scan("inspect", config, o);
  if (o.json) {
    console.log(jsonLine(_directoryObject(scan)));
    scan.cores.forEach((segs, c) => {
      console.log(jsonLine(_coreSummary(c, segs)));
      for (const s of segs) console.log(jsonLine(_segmentObject(s)));
    });
    for (const d of scan.damage) console.log(jsonLine({ kind: "damage", ...d }));
    return scan.damage.length > 0 ? 1 : 0;
  }
  const d = _directoryObject(scan);
  console.log(
    `WAL directory ${d.dir}: ${d.cores} cores, segments "${d.segmentPattern}", ` +
      `${d.checkpoints} checkpoints in ${d.checkpointDir}`,
  );
  scan.cores.forEach((segs, c) => {
    const k = _coreSummary(c, segs);
    console.log(
      `core ${c}: ${k.segments} segments, ${k.entries} entries, sequences ` +
        `${_range(k.firstSequence ?? undefined, k.lastSequence ?? undefined)}, epochs ` +
        `${_range(k.minEpoch ?? undefined, k.maxEpoch ?? undefined)}, ${sizeText(k.sizeBytes)} ` +
        `on disk, ${sizeText(k.validBytes)} of records`,
    );
    for (const s of segs) {
      const name = basename(s.path);
      if (s.state === "unstarted") {
        console.log(`  ${name}  ${sizeText(s.fileSizeBytes)}  unstarted (prepared ahead)`);
        continue;
      }
      if (s.crashTail !== undefined) {
        const t = s.crashTail;
        console.log(
          `  ${name}  ${sizeText(s.fileSizeBytes)}  crashTail: part of the crash tail that ` +
            `begins in ${basename(t.path)} at offset ${t.offset} (never acknowledged; recovery ` +
            `ignores it, repair puts it aside)`,
        );
        continue;
      }
      const h = s.header;
      const head = h === undefined
        ? "no header"
        : `header: first seq ${h.firstSequence}, epoch ${h.epoch}, created ` +
          `${timeText(h.createdAtNs)}, salt 0x${h.salt.toString(16).padStart(8, "0")}`;
      console.log(
        `  ${name}  ${sizeText(s.fileSizeBytes)}  ${s.entries} entries  seq ` +
          `${_range(s.firstSequence, s.lastSequence)}  epochs ${_range(s.minEpoch, s.maxEpoch)}  ` +
          `records end at ${s.validEndOffset}  ${s.state}`,
      );
      console.log(`    ${head}`);
      for (const x of s.damage) console.log(`    DAMAGE at offset ${x.offset}: ${x.reason}`);
      if (s.torn) console.log(`    torn tail at offset ${s.torn.offset}: ${s.torn.reason}`);
    }
  });
  const other = scan.damage.filter((x) => !scan.cores.flat().some((s) => s.path === x.path));
  for (const x of other) console.log(`DAMAGE ${damageText(x)}`);
  console.log(
    scan.damage.length === 0 ? "damage: none" : `damage: ${scan.damage.length} (see above)`,
  );
  return scan.damage.length > 0 ? 1 : 0;
}

/**
 * `wal verify`: every segment and checkpoint. Exit 1 with one line per damage (file, offset,
 * what) on stderr; a torn tail is a warning unless `strict`.
 */
export async function verify(config: PerCoreWalConfig, o: ReportOptions): Promise<number> {
  const scan = await _scan("verify", config, o);
  const bad = o.strict ? [...scan.damage, ...scan.torn] : scan.damage;
  const segments = scan.cores.flat().length;
  const entries = scan.cores.flat().reduce((n, s) => n + s.entries, 0);
  const checkpoints = scan.checkpoints.filter((k) => !k.incomplete && !k.foreign).length;
  if (o.json) {
    for (const x of scan.damage) console.log(jsonLine({ kind: "damage", ...x }));
    for (const x of scan.torn) console.log(jsonLine({ kind: "tornTail", ...x }));
    console.log(jsonLine({
      kind: "verify",
      ok: bad.length === 0,
      segments,
      entries,
      checkpoints,
      damage: scan.damage.length,
      tornTails: scan.torn.length,
    }));
  } else {
    for (const x of scan.damage) console.error(`wal verify: ${damageText(x)}`);
    for (const x of scan.torn) {
      console.error(
        `wal verify: ${o.strict ? "" : "warning: "}${damageText(x)} (a torn tail: recovery ` +
          `ends the log there, repair cuts it)`,
      );
    }
    if (bad.length === 0) {
      console.log(
        `ok: ${segments} segments, ${entries} entries, ${checkpoints} checkpoints verified` +
          (scan.torn.length > 0 ? `, ${scan.torn.length} torn tail(s)` : ""),
      );
    } else {
      console.error(
        `wal verify: ${bad.length} problem(s) in ${config.baseDir} (${segments} segments, ` +
          `${entries} valid entries)`,
      );
    }
  }
  return bad.length === 0 ? 0 : 1;
}

/** `wal stats`: totals per core and for the directory. */
export async function stats(config: PerCoreWalConfig, o: ReportOptions): Promise<number> {
  const scan = await _scan("stats", config, o);
  const all = scan.cores.flat();
  const types = { put: 0, delete: 0, checkpoint: 0, commit: 0, epochBarrier: 0 };
  for (const s of all) {
    for (const t of Object.keys(types) as (keyof typeof types)[]) types[t] += s.types[t];
  }
  const cores = scan.cores.map((segs, c) => _coreSummary(c, segs));
  const total = {
    kind: "stats",
    dir: config.baseDir,
    cores: config.numCores,
    segments: all.length,
    unstartedSegments: all.filter((s) => s.state === "unstarted").length,
    entries: all.reduce((n, s) => n + s.entries, 0),
    types,
    sizeBytes: all.reduce((n, s) => n + s.fileSizeBytes, 0),
    validBytes: all.reduce((n, s) => n + s.validEndOffset, 0),
    preallocatedBytes: all.reduce((n, s) => n + s.preallocatedBytes, 0),
    maxEpoch: cores.reduce<number | null>(
      (m, k) => (k.maxEpoch !== null && (m === null || k.maxEpoch > m) ? k.maxEpoch : m),
      null,
    ),
    checkpoints: scan.checkpoints.filter((k) => k.valid).length,
    latestCheckpointEpoch: scan.checkpoints.find((k) => k.used)?.meta?.epoch ?? null,
    damage: scan.damage.length,
    tornTails: scan.torn.length,
  };
  if (o.json) {
    for (const k of cores) console.log(jsonLine(k));
    console.log(jsonLine(total));
  } else {
    console.log(
      `${total.dir}: ${total.cores} cores, ${total.segments} segments ` +
        `(${total.unstartedSegments} prepared ahead), ${total.entries} entries`,
    );
    console.log(
      `  by type: ${Object.entries(types).map(([t, n]) => `${t} ${n}`).join(", ")}`,
    );
    console.log(
      `  bytes: ${sizeText(total.sizeBytes)} on disk, ${sizeText(total.validBytes)} of records, ` +
        `${sizeText(total.preallocatedBytes)} preallocated`,
    );
    console.log(
      `  epochs up to ${total.maxEpoch ?? "-"}; ${total.checkpoints} valid checkpoints` +
        (total.latestCheckpointEpoch === null
          ? ""
          : ` (latest at epoch ${total.latestCheckpointEpoch})`),
    );
    console.log(`  damage: ${total.damage}, torn tails: ${total.tornTails}`);
    for (const k of cores) {
      console.log(
        `  core ${k.core}: ${k.entries} entries in ${k.segments} segments, sequences ` +
          `${_range(k.firstSequence ?? undefined, k.lastSequence ?? undefined)}, epochs ` +
          `${_range(k.minEpoch ?? undefined, k.maxEpoch ?? undefined)}`,
      );
    }
  }
  return 0;
}

/**
 * `wal checkpoints`: every checkpoint, valid or not (or of another WAL), and which one recovery
 * would use.
 */
export function checkpoints(
  scan: { checkpointDir: string; checkpoints: CheckpointScan[] },
  o: ReportOptions,
): number {
  const { checkpointDir, checkpoints: list } = scan;
  if (o.json) {
    for (const k of list) console.log(jsonLine(_checkpointObject(k)));
  } else if (list.length === 0) {
    console.log(`no checkpoints in ${checkpointDir}`);
  }
  if (!o.json) {
    for (const k of list) {
      const x = _checkpointObject(k);
      if (k.meta === undefined) {
        console.log(`${basename(k.path)}  ${x.status}: ${k.reason}`);
        continue;
      }
      const m = k.meta;
      const barriers = m.walPositions.map((p) =>
        `core ${p.coreId} seg ${p.segment} @${p.offset} seq ${p.sequence}`
      ).join("; ");
      console.log(
        `${basename(k.path)}  ${x.status}${k.reason ? `: ${k.reason}` : ""}  epoch ${m.epoch}  ` +
          `${m.createdAt.toISOString()}  ${m.stateEntries} keys  ${m.entriesMerged} entries merged` +
          (m.previousId === undefined ? "" : `  on ckpt-${m.previousId}`) +
          (m.hasAppState ? "  app state" : ""),
      );
      console.log(`  replay from: ${barriers}`);
      if (m.offsets.size > 0) {
        console.log(`  offsets: ${[...m.offsets].map(([s, v]) => `${s}=${v}`).join(", ")}`);
      }
    }
  }
  return list.some((k) => !k.valid && !k.incomplete && !k.foreign) ? 1 : 0;
}
