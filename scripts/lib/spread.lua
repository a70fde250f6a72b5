-- wrk script of scripts/bench's spread rows: every request is a random member of the spread
-- tenant doing one thing, chosen per request.
--   wrk ... -s scripts/lib/spread.lua URL -- USERS FLOWS MODE
-- USERS: one member a line, "token cookie"; FLOWS: one flow path a line (the list's path first);
-- MODE: token (read a random flow with the token), session (the same with the session cookie),
-- list (the first page of the tenant's flows, with the token), anonymous (a random flow with no
-- credentials: the 401 baseline as this script drives it, so the client's own work per request,
-- a Lua call and a formatted request, is the same on both sides of the ratio).
local users, paths, list, mode = {}, {}, nil, "token"

function init(args)
  for line in io.lines(args[1]) do
    local token, cookie = line:match("^(%S+) (%S+)$")
    users[#users + 1] = { token = token, cookie = cookie }
  end
  for line in io.lines(args[2]) do
    if list == nil then list = line else paths[#paths + 1] = line end
  end
  mode = args[3] or mode
  -- Each thread its own sequence.
  math.randomseed(os.time() * 1000 + math.floor((os.clock() * 1e6) % 1000) + #tostring({}))
end

function request()
  local user = users[math.random(#users)]
  local path = list
  if mode ~= "list" then path = paths[math.random(#paths)] end
  if mode == "anonymous" then
    return wrk.format("GET", path)
  end
  if mode == "session" then
    return wrk.format("GET", path, { cookie = user.cookie })
  end
  return wrk.format("GET", path, { token = user.token })
end
