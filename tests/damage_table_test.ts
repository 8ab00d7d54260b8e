// The decision table of a damaged log (src/damage_table.ts): every combination of inputs matches
// exactly one row, every row is reachable, and a fact that costs I/O is asked for whenever the
// verdict depends on it. After TigerBeetle's `recovery_cases` test (src/vsr/journal.zig).
import { assert, assertEquals } from "@std/assert";
import {
  DAMAGE_ROWS,
  type DamageFacts,
  damageNeedsClaim,
  decideDamage,
  decideSegmentEnd,
  decideSegmentStart,
  decideTrailing,
  END_ROWS,
  endNeedsClaim,
  type SegmentEndFacts,
  type SegmentStartFacts,
  START_ROWS,
  startNeedsClaim,
  TRAILING_ROWS,
  type TrailingFacts,
} from "../src/damage_table.ts";

/** Every combination of the listed values of each field. */
function* combinations<T extends object>(
  axes: { [K in keyof T]: readonly T[K][] },
): Generator<T> {
  const keys = Object.keys(axes) as (keyof T)[];
  const at = keys.map(() => 0);
  while (true) {
    const out = {} as T;
    keys.forEach((k, i) => out[k] = axes[k][at[i]]);
    yield out;
    let i = 0;
    for (; i < keys.length; i++) {
      if (++at[i] < axes[keys[i]].length) break;
      at[i] = 0;
    }
    if (i === keys.length) return;
  }
}

const claims = [0, 4, 5, 9] as const;

function damageCases(): Generator<DamageFacts> {
  return combinations<DamageFacts>({
    at: [4096],
    what: ["bad"],
    code: ["Corrupted", "ChecksumMismatch"],
    hasHeader: [true, false],
    nonZero: [true, false],
    crashShaped: [true, false],
    validAt: [undefined, 8192],
    isLast: [true, false],
    laterKnown: [true, false],
    missing: [5],
    expectedFirst: [undefined, 5],
    claimHere: claims,
    claimLater: claims,
  });
}

function startCases(): Generator<SegmentStartFacts> {
  return combinations<SegmentStartFacts>({
    hasHeader: [true, false],
    identityMatches: [true, false],
    headerCoreId: [0],
    headerSegment: [3],
    version: [1, 2],
    firstSequence: [1, 5, 7],
    expected: [undefined, 5],
    startSegment: [undefined, 3, 2],
    index: [3],
    requireBeginning: [true, false],
    isFirst: [true, false],
    claimFromHere: claims,
  });
}

function endCases(): Generator<SegmentEndFacts> {
  return combinations<SegmentEndFacts>({
    hasHeader: [true, false],
    end: ["end", "torn", "corrupted"],
    offset: [0, 4096],
    reason: ["r"],
    code: ["Corrupted"],
    expected: [undefined, 5],
    truncated: [false, true],
    claimLater: claims,
  });
}

/**
 * Checks one table: exactly one row for every input (the decide function throws otherwise),
 * every row reached, and the row never depends on the claim when `needsClaim` says it is not
 * needed.
 */
function checkTable<F extends object>(
  rows: readonly { name: string }[],
  cases: Iterable<F>,
  decide: (f: F) => { row: string },
  needsClaim: (f: F) => boolean,
  claimKey: keyof F,
): number {
  const seen = new Set<string>();
  let n = 0;
  for (const f of cases) {
    n++;
    const d = decide(f);
    seen.add(d.row);
    if (!needsClaim(f)) {
      for (const c of claims) {
        const other = decide({ ...f, [claimKey]: c });
        assertEquals(other.row, d.row, `the claim changed the row for ${Deno.inspect(f)}`);
      }
    }
  }
  assertEquals([...seen].sort(), rows.map((r) => r.name).sort(), "every row is reachable");
  return n;
}

Deno.test("decideDamage: every combination of facts matches exactly one row, every row is reachable", () => {
  const n = checkTable(DAMAGE_ROWS, damageCases(), decideDamage, damageNeedsClaim, "claimLater");
  assert(n > 1000, `${n} cases`);
});

Deno.test("decideSegmentStart: every combination of facts matches exactly one row, every row is reachable", () => {
  checkTable(START_ROWS, startCases(), decideSegmentStart, startNeedsClaim, "claimFromHere");
});

Deno.test("decideSegmentEnd: every combination of facts matches exactly one row, every row is reachable", () => {
  checkTable(END_ROWS, endCases(), decideSegmentEnd, endNeedsClaim, "claimLater");
});

const damage: DamageFacts = {
  at: 4096,
  what: "record CRC mismatch",
  code: "ChecksumMismatch",
  hasHeader: true,
  nonZero: true,
  crashShaped: false,
  validAt: undefined,
  isLast: true,
  laterKnown: false,
  missing: 5,
  expectedFirst: undefined,
  claimHere: 0,
};

Deno.test("decideDamage: the rows of FORMAT.md section 8", () => {
  assertEquals(decideDamage({ ...damage, nonZero: false }).kind, "end");
  // Version 1 table.
  assertEquals(decideDamage(damage), {
    kind: "torn",
    row: "torn last record",
    offset: 4096,
    reason: "record CRC mismatch",
  });
  const followed = decideDamage({ ...damage, validAt: 8192 });
  assertEquals(followed.kind, "corrupted");
  assertEquals(followed.kind === "corrupted" && followed.resumeAt, 8192);
  assertEquals(decideDamage({ ...damage, isLast: false }).kind, "corrupted");
  // Version 2: a crash-shaped hole is a tail unless a marker claims the missing sequence.
  const v2 = { ...damage, crashShaped: true, validAt: 8192 };
  assertEquals(decideDamage(v2).kind, "torn");
  assertEquals(decideDamage({ ...v2, claimHere: 5 }).kind, "corrupted");
  const later = { ...v2, isLast: false, laterKnown: true };
  assert(damageNeedsClaim(later));
  assertEquals(decideDamage({ ...later, claimLater: 4 }).kind, "torn");
  const lost = decideDamage({ ...later, claimLater: 9 });
  assertEquals(lost.kind, "corrupted");
  assert(lost.kind === "corrupted" && lost.reason.includes("in a later segment"), lost.row);
  assertEquals(decideDamage({ ...v2, isLast: false }).kind, "corrupted");
  // A zero header followed by data.
  const zero = { ...damage, hasHeader: false, crashShaped: false };
  assertEquals(decideDamage(zero).kind, "torn");
  const mid = { ...zero, isLast: false, laterKnown: true, expectedFirst: 5 };
  assert(damageNeedsClaim(mid));
  assertEquals(decideDamage({ ...mid, claimLater: 4 }).kind, "torn");
  assertEquals(decideDamage({ ...mid, claimLater: 5 }).kind, "corrupted");
  assertEquals(decideDamage({ ...mid, expectedFirst: undefined }).kind, "corrupted");
});

const start: SegmentStartFacts = {
  hasHeader: true,
  identityMatches: true,
  headerCoreId: 0,
  headerSegment: 3,
  version: 2,
  firstSequence: 5,
  expected: 5,
  startSegment: undefined,
  index: 3,
  requireBeginning: false,
  isFirst: false,
};

Deno.test("decideSegmentStart: identity, the checkpoint's start, continuity and rotation tails", () => {
  assertEquals(decideSegmentStart(start).kind, "continue");
  const foreign = decideSegmentStart({ ...start, identityMatches: false, headerCoreId: 1 });
  assert(foreign.kind === "corrupt" && foreign.foreign && foreign.gap);
  assertEquals(
    foreign.kind === "corrupt" && foreign.reason,
    "its header says core 1 segment 3",
  );
  const first = { ...start, isFirst: true, expected: undefined };
  assertEquals(decideSegmentStart({ ...first, startSegment: 3 }).kind, "continue");
  assertEquals(decideSegmentStart({ ...first, startSegment: 2 }).kind, "corrupt");
  assertEquals(decideSegmentStart({ ...first, requireBeginning: true }).kind, "corrupt");
  assertEquals(
    decideSegmentStart({ ...first, requireBeginning: true, firstSequence: 1 }).kind,
    "continue",
  );
  const gap = { ...start, firstSequence: 7 };
  assert(startNeedsClaim(gap));
  assertEquals(decideSegmentStart({ ...gap, claimFromHere: 4 }).kind, "tail");
  const missing = decideSegmentStart({ ...gap, claimFromHere: 5 });
  assert(missing.kind === "corrupt" && missing.gap && missing.reason.includes("missing"));
  // Without a header, only the checkpoint's start is checked before reading.
  const none = { ...first, hasHeader: false, identityMatches: false };
  assertEquals(decideSegmentStart(none).kind, "continue");
  assertEquals(decideSegmentStart({ ...none, startSegment: 2 }).kind, "corrupt");
  // Version 1 segments carry no claims: a gap is always a missing segment.
  assertEquals(decideSegmentStart({ ...gap, version: 1, claimFromHere: 0 }).kind, "corrupt");
});

Deno.test("decideSegmentEnd: all-zero segments, torn and corrupted ends", () => {
  const zero: SegmentEndFacts = {
    hasHeader: false,
    end: "end",
    offset: 0,
    reason: "",
    code: "Corrupted",
    expected: 5,
    truncated: false,
  };
  assert(endNeedsClaim(zero));
  assertEquals(decideSegmentEnd({ ...zero, claimLater: 4 }).kind, "tail");
  const claimed = decideSegmentEnd({ ...zero, claimLater: 5 });
  assert(claimed.kind === "corrupt" && claimed.reason === "its header is zero");
  assertEquals(decideSegmentEnd({ ...zero, expected: undefined }).kind, "corrupt");
  const torn = decideSegmentEnd({ ...zero, hasHeader: true, end: "torn", offset: 4096 });
  assert(torn.kind === "tail" && torn.offset === 4096);
  assertEquals(decideSegmentEnd({ ...zero, hasHeader: true, end: "corrupted" }).kind, "corrupt");
  assertEquals(decideSegmentEnd({ ...zero, hasHeader: true }).kind, "continue");
  // Emptied before a laid-out segment: damage, whatever the claims, never a crash tail.
  for (const claimLater of claims) {
    const emptied = decideSegmentEnd({ ...zero, truncated: true, claimLater });
    assert(emptied.kind === "corrupt" && emptied.row === "empty segment before a laid-out one");
  }
  assert(!endNeedsClaim({ ...zero, truncated: true }));
});

Deno.test("decideTrailing: every combination of facts matches exactly one row, every row is reachable", () => {
  const cases = combinations<TrailingFacts>({
    content: ["empty", "zeros", "data"],
    laterLaidOut: [false, true],
  });
  const seen = new Set<string>();
  for (const f of cases) seen.add(decideTrailing(f).row);
  assertEquals([...seen].sort(), TRAILING_ROWS.map((r) => r.name).sort());
  assertEquals(decideTrailing({ content: "empty", laterLaidOut: false }).kind, "unstarted");
  // The next segment is created only once this one is durably laid out: an empty one before a
  // laid-out one was truncated.
  assertEquals(decideTrailing({ content: "empty", laterLaidOut: true }).kind, "truncated");
  assertEquals(decideTrailing({ content: "zeros", laterLaidOut: true }).kind, "unstarted");
  assertEquals(decideTrailing({ content: "data", laterLaidOut: false }).kind, "started");
});
