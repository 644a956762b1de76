-- The soak's mixed load, in turn: a masked read, a reveal, a write (a new version), a transit
-- encryption, a proxied call and a token creation. Needs the token in -H and the setup of
-- bench/soak.sh (secret/soak, transit key soak, proxy route up).
local headers = {}
local n = 0
local plaintext = '{"plaintext":"' .. string.rep("QUFB", 21) .. 'QQ=="}'

init = function(args)
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
end

request = function()
  n = n + 1
  local k = n % 6
  if k == 0 then
    return wrk.format("GET", "/api/v1/mounts/secret/secrets/soak", headers)
  elseif k == 1 then
    return wrk.format("GET", "/api/v1/mounts/secret/secrets/soak?reveal=true", headers)
  elseif k == 2 then
    return wrk.format("PATCH", "/api/v1/mounts/secret/secrets/soak", headers,
      string.format('{"set":{"COUNTER":"v%d-%d"}}', math.random(1, 1000000000), n))
  elseif k == 3 then
    return wrk.format("POST", "/v1/transit/encrypt/soak", headers, plaintext)
  elseif k == 4 then
    return wrk.format("GET", "/api/v1/proxy/up/v1/balance", headers)
  else
    return wrk.format("POST", "/api/v1/tokens", headers, '{"policies":["default"],"ttl":"10m"}')
  end
end
