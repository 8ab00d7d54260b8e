// A shipping process for tests/ship_nats_test.ts: ships a WAL directory another process writes.
// Mode "forever" ships until killed; "once" ships what is durable, waits for the acks, exits 0.
import { shipToNats } from "../src/ship/ship_to_nats.ts";

const [walDir, url, node, mode] = Deno.args;
const shipper = await shipToNats(walDir, { servers: url, node, maxRecordsPerMessage: 8 });
if (mode === "once") {
  await shipper.drained();
  console.log(JSON.stringify(shipper.status().cores.map((c) => c.lastShippedSequence)));
  await shipper.close();
} else {
  console.log("shipping");
  setInterval(() => {}, 1_000);
}
