-- wrk script for POST /v1/referrals: cycles through a file of pre-generated bodies.
--
--   wrk -t1 -c32 -d20s -s bench/intake.lua http://127.0.0.1:8102 -- \
--       BODIES_FILE STAFF_TOKEN API_KEY RUN_ID [START_OFFSET] [NTHREADS]
--
-- Pass NTHREADS equal to wrk's -t so threads interleave through the file (one wrk thread
-- saturates a Python server many times over; -t1 is the usual choice).
--
-- Each line of BODIES_FILE is "staff<TAB>{json}" or "system<TAB>{json}". Staff bodies (phone,
-- drop-in) carry the bearer token; system bodies the X-API-Key and a unique Idempotency-Key.
-- Any status other than 201 counts as an error. done() prints one JSON line prefixed "RESULT ".

local bodies = {}
local kinds = {}
local token, api_key, run_id
local counter = 0
local step = 1
local threads = {}
-- Globals: read from each thread by done() through thread:get().
non_201 = 0
statuses = {}
tid = 0

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   token = args[2]
   api_key = args[3]
   run_id = args[4] or "run"
   local start = tonumber(args[5] or "0")
   for line in io.lines(path) do
      local tab = string.find(line, "\t", 1, true)
      table.insert(kinds, string.sub(line, 1, tab - 1))
      table.insert(bodies, string.sub(line, tab + 1))
   end
   -- Threads interleave through the file: thread t sends start+t, start+t+n, ...
   step = tonumber(args[6] or "1")
   counter = start + tid
end

function request()
   local index = (counter % #bodies) + 1
   local headers = { ["Content-Type"] = "application/json" }
   if kinds[index] == "system" then
      headers["X-API-Key"] = api_key
      headers["Idempotency-Key"] = run_id .. "-" .. counter
   else
      headers["Authorization"] = "Bearer " .. token
   end
   counter = counter + step
   return wrk.format("POST", "/v1/referrals", headers, bodies[index])
end

function response(status, headers, body)
   if status ~= 201 then
      non_201 = non_201 + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   local codes = {}
   for _, thread in ipairs(threads) do
      bad = bad + (thread:get("non_201") or 0)
      local s = thread:get("statuses")
      if s then
         for code, n in pairs(s) do
            codes[#codes + 1] = string.format('"%d": %d', code, n)
         end
      end
   end
   local e = summary.errors
   io.write(string.format(
      'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "non_201": %d, '
      .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"statuses": {%s}, "latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, '
      .. '"p999": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes, bad,
      e.connect, e.read, e.write, e.status, e.timeout, table.concat(codes, ", "),
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
