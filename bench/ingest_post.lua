-- wrk script for the edge-ingestion server: each request POSTs one NDJSON batch of BATCH events
-- (environment variable, default 1) to /events. Keys are unique per thread and request, so every
-- event is a new put. Each event is about 80 bytes of NDJSON:
--   {"key":"t1-42-0","value":{"sensor":"s-0","reading":42.5,"seq":42}}
-- Run: BATCH=64 wrk -t2 -c16 -d15s --latency -s bench/ingest_post.lua http://127.0.0.1:8080

local batch = tonumber(os.getenv("BATCH") or "1")
local counter = 0
local threads = {}
local tid = 0

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
end

wrk.method = "POST"
wrk.path = "/events"
wrk.headers["Content-Type"] = "application/x-ndjson"

function request()
  counter = counter + 1
  local lines = {}
  for i = 0, batch - 1 do
    lines[#lines + 1] = string.format(
      '{"key":"t%d-%d-%d","value":{"sensor":"s-%d","reading":42.5,"seq":%d}}',
      tid, counter, i, i % 16, counter)
  end
  return wrk.format(nil, nil, nil, table.concat(lines, "\n") .. "\n")
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non200") or 0) end
  local secs = summary.duration / 1e6
  -- One machine-readable line for bench/ingest_wrk.sh.
  io.write(string.format(
    "RESULT batch=%d requests=%d non200=%d errors=%d req_per_s=%.1f events_per_s=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    batch, summary.requests, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
      summary.errors.timeout,
    summary.requests / secs, summary.requests * batch / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
