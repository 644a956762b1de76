-- Transit encrypt of 64 bytes (base64 of 64 'A's).
local body = '{"plaintext":"' .. string.rep("QUFB", 21) .. 'QQ=="}'
request = function()
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
