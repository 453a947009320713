-- wrk script for bench/e2e: replays the pre-signed requests in $HOOKROUTE_REQUESTS
-- (written by the `presign` baseline: a line with a request's length, then the raw
-- request), in order, one per call. Loaded in init, before wrk's clock starts, so the
-- generator only looks up the next string per request (wrk's advice for fast servers).
-- If a run sends more requests than the file holds it starts over and counts the
-- repeats in `wrapped`, which done() prints: bench/e2e rejects such a "unique" run.

local requests = {}
local count = 0
local next_index = 0
wrapped = 0

function init(args)
   local path = os.getenv("HOOKROUTE_REQUESTS")
   local file = assert(io.open(path, "rb"))
   while true do
      local length = file:read("*l")
      if not length then break end
      count = count + 1
      requests[count] = file:read(tonumber(length))
   end
   file:close()
   assert(count > 0, "no requests in " .. path)
end

function request()
   next_index = next_index + 1
   if next_index > count then
      next_index = 1
      wrapped = wrapped + count
   end
   return requests[next_index]
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("wrapped")
   end
   io.write(string.format("wrapped %d\n", total))
end
