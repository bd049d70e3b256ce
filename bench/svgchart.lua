-- bench/svgchart.lua: a line chart of requests per second over time, one line per
-- client, with the server's limit as a dashed line; plain SVG, no dependencies.
local M = {}

local COLORS = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"}

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end

-- Per-second counts of the times in ts (seconds, any origin), from the first one.
function M.per_second(ts)
  table.sort(ts)
  local bins = {}
  if #ts == 0 then return bins end
  local t0 = ts[1]
  local last = math.floor(ts[#ts] - t0) + 1
  for i = 1, last do bins[i] = 0 end
  for _, t in ipairs(ts) do
    local b = math.floor(t - t0) + 1
    bins[b] = bins[b] + 1
  end
  return bins
end

-- series: {{name=, bins={...}}, ...}; o: {title=, limit= (req/s line), xmax= (seconds)}
function M.render(series, o)
  local W, H, L, R, T, B = 760, 320, 56, 170, 34, 40
  local pw, ph = W - L - R, H - T - B
  local xmax, ymax = 1, o.limit or 1
  for _, s in ipairs(series) do
    xmax = math.max(xmax, #s.bins)
    for _, v in ipairs(s.bins) do ymax = math.max(ymax, v) end
  end
  if o.xmax then xmax = math.min(xmax, o.xmax) end
  ymax = ymax * 1.1
  local function x(t) return L + pw * t / xmax end
  local function y(v) return T + ph - ph * v / ymax end
  local out = {string.format(
    '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">',
    W, H, W, H), string.format('<rect width="%d" height="%d" fill="white"/>', W, H),
    string.format('<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>', L, esc(o.title or ""))}
  -- axes and ticks
  out[#out + 1] = string.format('<path d="M%d %d V%d H%d" stroke="#333" fill="none"/>', L, T, T + ph, L + pw)
  for i = 0, 4 do
    local v = ymax / 1.1 * i / 4
    out[#out + 1] = string.format('<text x="%d" y="%.1f" text-anchor="end">%d</text>', L - 6, y(v) + 4, math.floor(v + 0.5))
    out[#out + 1] = string.format('<path d="M%d %.1f H%d" stroke="#eee"/>', L, y(v), L + pw)
  end
  for i = 0, 5 do
    local t = xmax * i / 5
    out[#out + 1] = string.format('<text x="%.1f" y="%d" text-anchor="middle">%d</text>', x(t), T + ph + 16, math.floor(t + 0.5))
  end
  out[#out + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">seconds since the first request</text>',
    L + pw // 2, H - 6)
  out[#out + 1] = string.format('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">requests/s (all attempts)</text>',
    T + ph // 2, T + ph // 2)
  if o.limit then
    out[#out + 1] = string.format('<path d="M%d %.1f H%d" stroke="#555" stroke-dasharray="5,4"/>', L, y(o.limit), L + pw)
    out[#out + 1] = string.format('<text x="%d" y="%.1f" fill="#555">limit</text>', L + pw + 4, y(o.limit) + 4)
  end
  for i, s in ipairs(series) do
    local pts = {}
    for b, v in ipairs(s.bins) do
      if b - 1 > xmax then break end
      pts[#pts + 1] = string.format("%.1f,%.1f", x(b - 0.5), y(v))
    end
    local color = COLORS[(i - 1) % #COLORS + 1]
    if #pts > 0 then
      out[#out + 1] = string.format('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.6"/>',
        table.concat(pts, " "), color)
    end
    local ly = T + 8 + (i - 1) * 18
    out[#out + 1] = string.format('<path d="M%d %d h18" stroke="%s" stroke-width="3"/>', L + pw + 40, ly, color)
    out[#out + 1] = string.format('<text x="%d" y="%d">%s</text>', L + pw + 62, ly + 4, esc(s.name))
  end
  out[#out + 1] = "</svg>\n"
  return table.concat(out, "\n")
end

return M
