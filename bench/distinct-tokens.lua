-- wrk script: a different bearer token on every request, read from the file named after `--`.
-- Each connection starts at its own place in the list, so no two send the same token together.
local tokens = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  if #tokens == 0 then error("no tokens in " .. args[1]) end
  next_index = math.random(#tokens)
end

function request()
  next_index = next_index % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = tokens[next_index] })
end
