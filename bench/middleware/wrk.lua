-- wrk script for bench/middleware. With WRK_RATE set, requests go out at that many per second
-- whatever the latency (as wrk2 does; Debian ships only wrk): before each request, `delay()`
-- books the next free slot of a fixed schedule and waits for it. wrk waits whole milliseconds, so
-- the wait is dithered between the two nearest. Enough connections must be idle to take each slot
-- (connections > rate × latency). The summary goes out as one JSON line.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *time);
]]

local CLOCK_MONOTONIC = 1
local CATCH_UP_MS = 20
local clock = ffi.new("bench_timespec")
local rate = tonumber(os.getenv("WRK_RATE") or "0")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

if rate > 0 then
  local interval_ms = 1000 / rate
  local next_slot = nil

  function delay()
    local now = now_ms()
    -- Slots missed while every connection was busy are made up, but at most CATCH_UP_MS worth.
    local slot = math.max(next_slot or now, now - CATCH_UP_MS)
    next_slot = slot + interval_ms
    return math.floor(slot - now + math.random())
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"socketErrors":%d,"non2xx":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
