-- wrk script for durable writes: etcd's gRPC gateway (`POST /v3/kv/put`)
-- or topod's `PUT /v1/policy`. Usage: wrk -s put.lua URL -- etcd|topod [TOKEN]
-- TOKEN, when given and not empty, goes in `Authorization: Bearer TOKEN`
-- (topod with security on).
-- Every request writes a different value, so each write is a real change.
-- The `done` hook prints one machine-readable line:
--   RESULT p50_us=.. p90_us=.. p99_us=.. max_us=.. requests=.. rps=.. non2xx=.. socket_errors=..

local mode = "topod"
local token = ""
local counter = 0
local threads = {}
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local key_b64 = b64("bench/key")

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "topod"
  token = args[2] or ""
  -- distinct value ranges per thread
  counter = (thread_no or 1) * 100000000
end

function request()
  counter = counter + 1
  if mode == "etcd" then
    local body = '{"key":"' .. key_b64 .. '","value":"' .. b64(tostring(counter)) .. '"}'
    return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" }, body)
  else
    -- cooldown values stay well inside the accepted range
    local body = '{"cooldown_ms":' .. tostring(1000 + counter % 1000000) .. '}'
    local headers = { ["Content-Type"] = "application/json" }
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    return wrk.format("PUT", "/v1/policy", headers, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT p50_us=%d p90_us=%d p99_us=%d max_us=%d requests=%d rps=%.1f non2xx=%d socket_errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.requests, summary.requests / secs, e.status,
    e.connect + e.read + e.write + e.timeout))
end
