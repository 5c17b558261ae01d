-- wrk script: GET /?k=N with N spread over a million keys (spreads lock shards, defeats caches).
request = function()
  return wrk.format("GET", "/?k=" .. math.random(1, 1000000))
end
