-- serve_latency.lua — wrk script: POST /v1/tx, one distinct transaction a
-- request, taken in order from a stream file (protocol section 2: a 60-byte
-- header, then u32 little-endian length + bytes per record).
--
--   wrk -t1 -cC -dS --latency -s bench/serve_latency.lua URL -- STREAM FIRST
--
-- Records FIRST.. are sent (the ones before are the setup the caller has
-- already admitted, so most of these are accepted). Run with one thread
-- (-t1): each wrk thread has its own Lua state, and only one state handing
-- out records keeps every request distinct. When the records run out the
-- thread stops, so no record is sent twice (a repeat would be a quick
-- reject and flatter the figures). done() prints one line that
-- bench_serve.py reads:
--   wrk-latency requests N non2xx N p50_us X p99_us Y max_us Z
-- (422, a ledger reject, is an answer like any other: counted apart.)

local records = {}
local next_record = 1

local function u32le(s, at)
   local a, b, c, d = s:byte(at, at + 3)
   return a + b * 256 + c * 65536 + d * 16777216
end

function init(args)
   local path, first = args[1], tonumber(args[2] or "0")
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   local at, index = 61, 0 -- Lua strings count from 1: byte 60 is at 61
   while at + 3 <= #data do
      local n = u32le(data, at)
      if at + 3 + n > #data then
         break -- a cut last record
      end
      if index >= first then
         records[#records + 1] = wrk.format("POST", "/v1/tx",
            { ["Content-Type"] = "application/octet-stream" },
            data:sub(at + 4, at + 3 + n))
      end
      index = index + 1
      at = at + 4 + n
   end
end

function request()
   local r = records[next_record]
   if r == nil then
      wrk.thread:stop()
      return records[#records] -- not sent: the thread is stopping
   end
   next_record = next_record + 1
   return r
end

function response()
   if next_record > #records then
      wrk.thread:stop()
   end
end

function done(summary, latency)
   io.write(string.format(
      "wrk-latency requests %d non2xx %d p50_us %d p99_us %d max_us %d\n",
      summary.requests, summary.errors.status, latency:percentile(50),
      latency:percentile(99), latency.max))
end
