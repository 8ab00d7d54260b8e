// CPU time by thread from /proc/<pid>/task/*/schedstat, read through a shell (/proc needs broad
// read permissions): steadier than wall time on a shared machine.

/** Field `field` (1-based) of each thread's schedstat, by "name/tid". */
async function schedstatField(field: number): Promise<Map<string, number>> {
  const script = `for t in /proc/${Deno.pid}/task/*; do ` +
    `echo "$(cat $t/comm)|$(basename $t)|$(cut -d' ' -f${field} $t/schedstat)"; done`;
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  const m = new Map<string, number>();
  for (const line of new TextDecoder().decode(out.stdout).trim().split("\n")) {
    const [name, tid, n] = line.split("|");
    m.set(`${name}/${tid}`, Number(n));
  }
  return m;
}

/** Nanoseconds of CPU each thread of this process has used, by "name/tid". */
export function threadCpu(): Promise<Map<string, number>> {
  return schedstatField(1);
}

/**
 * Times each thread of this process was switched in (schedstat's third field), by "name/tid":
 * for a thread that blocks between pieces of work, its wake-ups.
 */
export function threadSwitches(): Promise<Map<string, number>> {
  return schedstatField(3);
}

/** Nanoseconds of CPU all threads of this process have used. */
export async function processCpu(): Promise<number> {
  let sum = 0;
  for (const ns of (await threadCpu()).values()) sum += ns;
  return sum;
}
