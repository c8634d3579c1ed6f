-- wrk script for bench-edge: POST one vote per request, each with a distinct
-- voter token read from the file named by TOKENS (one token per line).
-- Each wrk thread starts at a different offset so no token is used twice.
local tokens = {}
local i = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = line
  end
  local threads = tonumber(os.getenv("WRK_THREADS") or "2")
  local per = math.floor(#tokens / threads)
  i = (offset or 0) * per
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  i = i + 1
  local tok = tokens[(i - 1) % #tokens + 1]
  return wrk.format(nil, nil, nil, '{"token":"' .. tok .. '","choice":' .. (i % 2) .. '}')
end
