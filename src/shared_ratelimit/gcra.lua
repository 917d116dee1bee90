-- One hook's bucket, shared by every instance: the GCRA that governor runs for the local buckets.
-- KEYS[1]: the bucket; ARGV[1]: microseconds between tokens (1e6 / rate); ARGV[2]: burst.
-- Returns 0 when a token was taken, else the microseconds until one will be there.
-- The time is Redis's own, so instances with clocks apart still share one bucket.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
-- The theoretical arrival time: when the bucket is full again.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed_at = tat - interval * (burst - 1)
if now < allowed_at then
  return math.ceil(allowed_at - now)
end
tat = tat + interval
-- Gone once the bucket would be full anyway: a full bucket and a missing key are the same.
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
