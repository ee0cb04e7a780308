-- wrk script for the task endpoints, configured through the environment (bench/run.py sets it):
--   BENCH_MODE      get | list | post | batch (Taskhub only: POST BENCH_PREFIX/batch) | mcp
--                   (Taskhub only: POST /mcp, a JSON-RPC tools/call in BENCH_BODY)
--   BENCH_PREFIX    "/tasks" (ceiling) or "/v1/tasks" (Taskhub)
--   BENCH_TOKEN     bearer token; empty for the ceiling
--   BENCH_IDS_FILE  one task id per line (mode get); each thread starts at its own offset and
--                   cycles over every id
--   BENCH_BODY      the JSON body (modes post, batch and mcp)
--   BENCH_MCP_PROTOCOL  the MCP-Protocol-Version header (mode mcp)
-- done() prints one line "BENCH_RESULT {json}" that bench/run.py parses (latencies in us).
-- wrk counts a response with status > 399 in errors.status; run.py treats any error as a failed
-- measurement. A tool error is a 200 over MCP, so mode mcp also counts an answer that is not a
-- JSON-RPC result or is a result with "isError":true (errors_tool).

local mode = os.getenv("BENCH_MODE") or "get"
local prefix = os.getenv("BENCH_PREFIX") or "/tasks"
local token = os.getenv("BENCH_TOKEN") or ""
local ids_file = os.getenv("BENCH_IDS_FILE")
local body = os.getenv("BENCH_BODY") or "{}"
local mcp_protocol = os.getenv("BENCH_MCP_PROTOCOL") or ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

local requests = {}
local position = 0

function init(args)
  local headers = {}
  if token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  if mode == "get" then
    for line in io.lines(ids_file) do
      if line ~= "" then
        table.insert(requests, wrk.format("GET", prefix .. "/" .. line, headers))
      end
    end
    assert(#requests > 0, "no ids in " .. tostring(ids_file))
    -- Spread the threads over the id list so they do not ask for the same rows in step.
    position = ((thread_index or 1) - 1) * math.floor(#requests / 2)
  elseif mode == "list" then
    table.insert(requests, wrk.format("GET", prefix .. "?limit=50", headers))
  elseif mode == "post" then
    headers["Content-Type"] = "application/json"
    table.insert(requests, wrk.format("POST", prefix, headers, body))
  elseif mode == "batch" then
    headers["Content-Type"] = "application/json"
    table.insert(requests, wrk.format("POST", prefix .. "/batch", headers, body))
  elseif mode == "mcp" then
    headers["Content-Type"] = "application/json"
    headers["Accept"] = "application/json, text/event-stream"
    headers["MCP-Protocol-Version"] = mcp_protocol
    table.insert(requests, wrk.format("POST", "/mcp", headers, body))
  else
    error("unknown BENCH_MODE " .. mode)
  end
end

function request()
  position = position % #requests + 1
  return requests[position]
end

-- Defined for mode mcp only: wrk reads response bodies into Lua only when this exists.
tool_errors = 0
local rpc_result = '{"jsonrpc":"2.0","id":1,"result":'
if mode == "mcp" then
  function response(status, _headers, answer)
    if status < 400 and (answer:sub(1, #rpc_result) ~= rpc_result
        or answer:find('"isError":true', 1, true)) then
      tool_errors = tool_errors + 1
    end
  end
end

function done(summary, latency, _requests)
  local e = summary.errors
  local tool = 0
  for _, thread in ipairs(threads) do
    tool = tool + (thread:get("tool_errors") or 0)
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,' ..
    '"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"errors_tool":%d,"latency_mean_us":%.1f,"latency_max_us":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, tool, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
