-- wrk script: PUT 100-byte values to random keys (one of 100,000) through
-- the HTTP API. Usage (against a running cluster, e.g. scripts/cluster.sh):
--   wrk -t2 -c64 -d10s -s benchmarks/http/put.lua http://127.0.0.1:3000
-- Any non-200 answer is counted by wrk as a non-2xx response.
local value = string.rep("v", 100)
request = function()
  local key = "key-" .. math.random(1, 100000)
  return wrk.format("PUT", "/v1/kv/" .. key, nil, value)
end
