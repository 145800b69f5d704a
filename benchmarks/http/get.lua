-- wrk script: linearizable GETs of random keys (one of 100,000; run put.lua
-- first so that most exist; 404s count as non-2xx). Usage:
--   wrk -t2 -c64 -d10s -s benchmarks/http/get.lua http://127.0.0.1:3000
-- Add "?consistency=lease" or "stale" by setting CONSISTENCY in the env.
local suffix = ""
local c = os.getenv("CONSISTENCY")
if c and c ~= "" then suffix = "?consistency=" .. c end
request = function()
  return wrk.format("GET", "/v1/kv/key-" .. math.random(1, 100000) .. suffix)
end
