-- Transit encrypt of 64 bytes (base64 of 64 'A's).
local body = '{"plaintext":"' .. string.rep("QUFB", 21) .. 'QQ=="}'
-- The command line's -H headers (the token) plus the content type.
local headers = {}
init = function(args)
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
end

request = function()
  return wrk.format("POST", nil, headers, body)
end
