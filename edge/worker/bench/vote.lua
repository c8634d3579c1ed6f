-- wrk script for bench-edge: POST one vote per request, each with a distinct
-- voter token read from the file named by TOKENS (one token per line).
-- Each wrk thread starts at a different offset so no token is used twice.
-- At the end it prints how many answers had each status other than 202,
-- with one sample body each, so a stray error is explained, not just counted.
local tokens = {}
local i = 0
local threads = {}
codes = {}
samples = {}

function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = line
  end
  local n = tonumber(os.getenv("WRK_THREADS") or "2")
  local per = math.floor(#tokens / n)
  i = (offset or 0) * per
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  i = i + 1
  local tok = tokens[(i - 1) % #tokens + 1]
  return wrk.format(nil, nil, nil, '{"token":"' .. tok .. '","choice":' .. (i % 2) .. '}')
end

function response(status, headers, body)
  if status ~= 202 then
    codes[status] = (codes[status] or 0) + 1
    if samples[status] == nil then
      samples[status] = body
    end
  end
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local c, s = t:get("codes"), t:get("samples")
    for status, n in pairs(c or {}) do
      io.write(string.format("status %d: %d answers, e.g. %s\n", status, n, tostring((s or {})[status])))
    end
  end
end
