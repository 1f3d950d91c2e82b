-- wrk script: POST signed Sentry `event_alert` webhooks to paiid-alerts (/webhooks/sentry).
--
-- wrk's Lua has no HMAC, so scripts/bench-intake.sh pre-generates the bodies and their
-- signatures into a file, one request per line:  <hex HMAC-SHA256 of body> TAB <compact JSON body>
--
-- Env knobs (read in every wrk thread):
--   BODIES   = path of that file (required)
--   THREADS  = wrk's -t value (default 2): thread k of T takes lines k, k+T, k+2T, ... so the
--              threads never send the same body, and each starts at a different offset
--   PA_PATH  = request path (default /webhooks/sentry)
--
-- Every body carries its own data.event.event_id, so each request is a new event, until a thread
-- has sent its whole share; after that it starts over and what it sends are duplicates (answered
-- 200 "duplicate", stored once). done() prints how many requests may have been such repeats.
-- All requests are formatted in init(), so Lua costs about nothing during the run, like
-- /work/shared/bench/alertmanager/alerts.lua does for Alertmanager.

local BODIES  = os.getenv("BODIES") or error("BODIES (file of sig<TAB>body lines) is not set")
local THREADS = tonumber(os.getenv("THREADS") or "2")
local PATH    = os.getenv("PA_PATH") or "/webhooks/sentry"

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local reqs, nreq, idx = {}, 0, 0
sent = 0 -- global: read by done() through thread:get

function init(args)
  local me = (tid or 1) - 1
  local line_no = 0
  for line in io.lines(BODIES) do
    if line_no % THREADS == me then
      local tab = line:find("\t", 1, true)
      if tab then
        local sig, body = line:sub(1, tab - 1), line:sub(tab + 1)
        nreq = nreq + 1
        reqs[nreq] = wrk.format("POST", PATH, {
          ["Content-Type"] = "application/json",
          ["Sentry-Hook-Resource"] = "event_alert",
          ["Sentry-Hook-Signature"] = sig,
        }, body)
      end
    end
    line_no = line_no + 1
  end
  if nreq == 0 then
    error("no requests for thread " .. (me + 1) .. " in " .. BODIES)
  end
  shared_n = nreq
end

function request()
  sent = sent + 1
  idx = idx % nreq + 1
  return reqs[idx]
end

-- One machine-readable line for bench-intake.sh (latencies in microseconds).
function done(summary, latency, requests)
  local sent_total, repeats, bodies = 0, 0, 0
  for _, t in ipairs(threads) do
    local s, n = t:get("sent") or 0, t:get("shared_n") or 0
    sent_total = sent_total + s
    bodies = bodies + n
    if s > n then repeats = repeats + (s - n) end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d sent=%d bodies=%d repeats=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, sent_total, bodies, repeats))
end
