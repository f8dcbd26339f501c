-- wrk script: every request starts an echo run through the API,
--   POST /background-agents/start {"agentId":"installed:echo"}
-- with the bearer token from $NIGHTSHIFT_TOKEN. wrk's own summary counts the
-- answers that were not 201 ("Non-2xx or 3xx responses").
local token = os.getenv("NIGHTSHIFT_TOKEN")
if token == nil or token == "" then
  error("set NIGHTSHIFT_TOKEN to the host's bearer token")
end
wrk.method = "POST"
wrk.path = "/background-agents/start"
wrk.body = '{"agentId":"installed:echo"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
