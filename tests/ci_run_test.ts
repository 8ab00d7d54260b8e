/**
 * `.ci/run`: its summary names the tests that failed. The script runs in a copy of the checkout
 * whose `run.sh` prints what `deno test` prints when a test fails (the whole suite is not run).
 */

import { assertEquals, assertStringIncludes } from "@std/assert";
import { tempDir } from "./_helpers.ts";

const DENO_TEST_OUTPUT = `running 2 tests from ./tests/a_test.ts
first ... ok (3ms)
second ... FAILED (5ms)
running 1 test from ./tests/b_test.ts
third ... FAILED (1ms)

 ERRORS 

second => ./tests/a_test.ts:12:6
error: AssertionError: Values are not equal.

third => ./tests/b_test.ts:3:6
error: Error: boom

 FAILURES 

second => ./tests/a_test.ts:12:6
third => ./tests/b_test.ts:3:6

FAILED | 1 passed | 2 failed (40ms)

error: Test failed
`;

async function runCi(output: string, status: number): Promise<{ code: number; lines: string[] }> {
  await using dir = await tempDir();
  Deno.mkdirSync(`${dir.path}/.ci`);
  Deno.copyFileSync(new URL("../.ci/run", import.meta.url).pathname, `${dir.path}/.ci/run`);
  Deno.writeTextFileSync(`${dir.path}/output.txt`, output);
  Deno.writeTextFileSync(`${dir.path}/run.sh`, `cat output.txt\nexit ${status}\n`);
  const out = await new Deno.Command("bash", {
    args: [`${dir.path}/.ci/run`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trimEnd();
  return { code: out.code, lines: text.split("\n") };
}

Deno.test(".ci/run prints the names of the failed tests, then its one-line summary", async () => {
  const { code, lines } = await runCi(DENO_TEST_OUTPUT, 1);
  assertEquals(code, 1);
  assertEquals(lines.at(-1), "tests: 1 passed, 2 failed");
  const tail = lines.slice(lines.lastIndexOf("FAILED | 1 passed | 2 failed (40ms)") + 1);
  assertStringIncludes(tail.join("\n"), "failed tests:");
  assertEquals(tail.slice(-3, -1), [
    "  second => ./tests/a_test.ts:12:6",
    "  third => ./tests/b_test.ts:3:6",
  ]);
});

Deno.test(".ci/run prints no failed-test list when every test passed", async () => {
  const { code, lines } = await runCi(
    "running 1 test\nx ... ok\n\nok | 1 passed | 0 failed (1ms)\n",
    0,
  );
  assertEquals(code, 0);
  assertEquals(lines.at(-1), "tests: 1 passed, 0 failed");
  assertEquals(lines.filter((l) => l.includes("failed tests")), []);
});
