-- wrk script: GET /?k=N with N from a hot set of 100 keys (cache-friendly traffic).
request = function()
  return wrk.format("GET", "/?k=" .. math.random(1, 100))
end
