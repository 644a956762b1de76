-- Native write: PATCH a secret with a new value each request (so every request is a new version).
-- wrk -s bench/lua/kv_write.lua URL, with the path in the URL and the token in -H.
local n = 0
-- The command line's -H headers (the token) plus the content type.
local headers = {}
init = function(args)
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
end

request = function()
  n = n + 1
  local body = string.format('{"set":{"COUNTER":"v%d-%d"}}', math.random(1, 1000000000), n)
  return wrk.format("PATCH", nil, headers, body)
end
