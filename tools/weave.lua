--[[
weave.lua -- the book's weaver: a pandoc Lua filter for HTML and LaTeX.

It turns the literate chapters (chapters/NN-name.md) into readable pages:

  1. chunks   Code blocks with `file=PATH` (root chunks) or `#name` (named
              chunks) get a caption (<name> = / <name> +=), an anchor, a
              "used in" line, and every `<<name>>` line inside them becomes
              a link to the chunk's first definition (possibly on another
              page).  Undefined references are errors.
  2. keys     Inline spans [csv/version/dtype/size/column]{.r} (and ratios
              "A / B") become formatted numbers from the measured CSVs of the
              reference GPU (or `gpu=slug`; where the reference has no data for
              that CSV, the first GPU that has).  Unresolved keys are errors.
     Claims [text]{.claim expr="KEY or A / B" in="LO:HI"} are sentences about the
              data: the text reads as written where the value lies in [LO, HI] (either
              bound may be left out) on the reference GPU, where a failure is an error;
              on every other GPU with data where it fails, the text is marked and the
              value measured there is printed after it.  A `*` for the dtype or the
              size (in every key of a ratio) makes the claim hold at every one with
              data (`over="S1,S2"` keeps those sizes only).
  3. tables   Divs ::: {.results csv=NAME metric=COL [dtype= versions= sizes=]}
              become one table per GPU with data (reference first; "The same
              on GPU" after the first), of the rows and size columns that hold
              a value; tables with too many sizes are split.  A Markdown table
              of result keys (a table of ratios) is repeated for each GPU the
              same way.  A GPU without the CSV is named: "No data for the GPU".
  4. stale    Tables and figures whose provenance `sources_sha1` no longer
              matches the sources get a prominent note (class "stale").
  5. figures  ![caption](stem.svg) is pointed at figure-dir (.pdf for LaTeX)
              and its caption names the GPUs and dates (a diagram, whose CSV is
              declared as "-", is left as it is).
  6. index    With `-M index-page=true` the input is ignored and the table of
              contents of the HTML site is generated from the chapters.
  7. GPUs     With `-M gpus-page=true` the input is ignored and the page of the GPUs
              measured is generated: per chapter and GPU, the best version's % of the
              ceiling and its time against each peer's, and per GPU but the reference,
              the claims of the chapters that do not hold on it.
  8. sass     An empty block ```{.sass program=P kernel=K match=PATTERN}``` shows the
              instructions of kernel K in bin-dir/P that PATTERN (a Lua pattern on
              "OPCODE OPERANDS") matches, from `cuobjdump -sass`, under a caption that
              counts them; instance=S (a substring of the demangled name) picks one of
              several instances, lines=N shows at most N (8), arch=sm_90 wants that
              architecture's code (a program built for another is a note, no error).
              Errors name the chapter's line: "chapters/x.md:LINE: sass block ...".
  9. resources  An empty block ```{.resources program=P kernel=K [instance=S] [arch=]}```
              becomes a table of every function of bin-dir/P that K and S select (as
              in a sass block): registers, the kernel's own static shared memory (the
              1 KiB the system reserves taken out), local memory, stack, from
              `cuobjdump -res-usage`; a key [res:P/K/S/FIELD]{.r} (S may be empty;
              FIELD regs, shared, local or stack) is one of those numbers, and must
              select one function. Errors name the chapter's line.

Metadata (pandoc -M key=value):
  chunk-index   path of the tangler's index (build/chunks.tsv)
  data-dir      measured data root (figures/data)
  ref-gpu       reference GPU slug (nvidia-h100-80gb-hbm3)
  figure-dir    directory of rendered figures as the output should name it
  figures       optional "stem:csv ..." pairs: which CSV each figure plots
  chapter       the chapter this run weaves (HTML: one page per chapter)
  chapters      space separated list of all chapters in book order; gives
                prev/next navigation (HTML) and, when `chapter` is absent
                (the PDF: all chapters in one run), chapter boundaries, found
                by matching each chapter's first `# ` heading
  gpus          optional space separated GPU slugs with data (default: ls)
  index-page    true: build the HTML contents page instead of a chapter
  book-version  optional version line of the title page ("2026-12-01, commit 28c581c")
  allow-missing-data  true: unresolved result keys are warnings and show a
                visible [no data: KEY] marker (drafts before `make bench`)
  bin-dir       where the chapter programs are built (build/bin), for sass and resources blocks
  cuobjdump     the cuobjdump to run (default: the one on PATH)
  cxxfilt       the demangler (default c++filt; without one, names stay mangled)
Errors are collected, printed to stderr as "CHAPTER: message" and end the run
with error(), so pandoc exits non-zero.
]]

local utils = pandoc.utils
local stringify = utils.stringify

------------------------------------------------------------------------
-- Run state
------------------------------------------------------------------------

local S = {
  latex = FORMAT:match('latex') ~= nil or FORMAT == 'beamer',
  chapter = nil,      -- chapter being woven (path like chapters/01-reduce.md)
  chapters = {},      -- all chapters in book order
  titles = {},        -- chapter path -> title (plain text)
  index = nil,        -- parsed chunk index
  seen = {},          -- chunk name -> blocks seen in the current chapter
  ids = {},           -- anchor ids already emitted
  errors = {},        -- collected error messages
  data = {},          -- cache: gpu .. '/' .. csv -> table or false
  prov = {},          -- cache: gpu .. '/' .. csv -> provenance or false
  stale = {},         -- cache: gpu .. '/' .. csv -> stale reason or false
}

local function meta_str(meta, key, default)
  local v = meta[key]
  if v == nil then return default end
  local s = stringify(v)
  if s == '' then return default end
  return s
end

-- The words of s, separated by spaces or commas (attribute and metadata lists).
local function words(s)
  local out = {}
  for w in (s or ''):gmatch('[^,%s]+') do out[#out + 1] = w end
  return out
end

local function fail(msg)
  S.errors[#S.errors + 1] = (S.chapter or 'book') .. ': ' .. msg
end

local function warn(msg)
  io.stderr:write('weave: ' .. (S.chapter or 'book') .. ': ' .. msg .. '\n')
end

local function read_file(path, mode)
  local f = io.open(path, mode or 'r')
  if not f then return nil end
  local s = f:read('a')
  f:close()
  return s
end

------------------------------------------------------------------------
-- Names, ids and links
------------------------------------------------------------------------

-- SLUG: lowercase, each run of non-alphanumerics becomes '-', trimmed.
local function slug(s)
  s = s:lower():gsub('[^%w]+', '-'):gsub('^%-+', ''):gsub('%-+$', '')
  return s
end

local function chunk_id(name, seq)
  if tonumber(seq) == 1 then return 'chunk-' .. slug(name) end
  return 'chunk-' .. slug(name) .. '-' .. seq
end

local function file_id(path) return 'file-' .. slug(path) end

-- chapters/01-reduce.md -> 01-reduce
local function chapter_stem(chapter)
  return (chapter:match('([^/]+)$') or chapter):gsub('%.md$', '')
end

-- chapters/01-reduce.md -> reduce (the name of its CSV)
local function chapter_csv(chapter)
  return (chapter_stem(chapter):gsub('^%d+%-', ''):gsub('%-', '_'))
end

local function page_of(chapter) return chapter_stem(chapter) .. '.html' end

-- Link target for anchor `id` defined in `chapter`: one document in LaTeX,
-- one page per chapter in HTML.
local function href(chapter, id)
  if S.latex or chapter == nil or chapter == S.chapter then return '#' .. id end
  return page_of(chapter) .. '#' .. id
end

-- Make an id unique within this output (continuations, repeated roots).
local function unique_id(id)
  local out, n = id, 1
  while S.ids[out] do n = n + 1; out = id .. '-' .. n end
  S.ids[out] = true
  return out
end

local function html_escape(s)
  return (s:gsub('&', '&amp;'):gsub('<', '&lt;'):gsub('>', '&gt;'):gsub('"', '&quot;'))
end

local function latex_escape(s)
  return (s:gsub('[\\{}$&#^_%%~]', function(c)
    if c == '\\' then return '\\textbackslash{}' end
    if c == '^' then return '\\^{}' end
    if c == '~' then return '\\textasciitilde{}' end
    return '\\' .. c
  end))
end

------------------------------------------------------------------------
-- Chunk index (build/chunks.tsv)
------------------------------------------------------------------------

-- The fields of a line separated by sep (one character: a tab or a comma);
-- empty fields are kept.
local function split_fields(line, sep)
  local f = {}
  for field in (line .. sep):gmatch('([^' .. sep .. ']*)' .. sep) do f[#f + 1] = field end
  return f
end

-- Returns { defs = name -> list of {seq, chapter, line},
--           files = path -> {chapter, line}, uses = name -> list of uses }
local function load_index(path)
  local idx = { defs = {}, files = {}, uses = {} }
  local text = path and read_file(path)
  if not text then return nil end
  for line in text:gmatch('[^\n]+') do
    local f = split_fields((line:gsub('\r$', '')), '\t')
    if f[1] == 'file' then
      idx.files[f[2]] = { chapter = f[3], line = tonumber(f[4]) }
    elseif f[1] == 'def' then
      idx.defs[f[2]] = idx.defs[f[2]] or {}
      table.insert(idx.defs[f[2]],
        { seq = tonumber(f[3]), chapter = f[4], line = tonumber(f[5]) })
    elseif f[1] == 'use' then
      idx.uses[f[2]] = idx.uses[f[2]] or {}
      table.insert(idx.uses[f[2]],
        { chapter = f[3], line = tonumber(f[4]), user = f[5] })
    end
  end
  return idx
end

-- Without an index (e.g. a chapter woven by hand) fall back to the chunks of
-- the document itself, so links within the page still work.
local function local_index(blocks)
  local idx = { defs = {}, files = {}, uses = {} }
  local seq = {}
  pandoc.walk_block(pandoc.Div(blocks), {
    CodeBlock = function(cb)
      local user
      if cb.attributes.file then
        idx.files[cb.attributes.file] = { chapter = S.chapter, line = 0 }
        user = 'file:' .. cb.attributes.file
      elseif cb.identifier ~= '' then
        local n = cb.identifier
        seq[n] = (seq[n] or 0) + 1
        idx.defs[n] = idx.defs[n] or {}
        table.insert(idx.defs[n], { seq = seq[n], chapter = S.chapter, line = 0 })
        user = n
      end
      if user then
        for ref in cb.text:gmatch('<<(.-)>>') do
          idx.uses[ref] = idx.uses[ref] or {}
          table.insert(idx.uses[ref], { chapter = S.chapter, line = 0, user = user })
        end
      end
    end })
  return idx
end

-- SEQ of the next block named `name` in the current chapter: the blocks of
-- earlier chapters (book order = name order) plus those seen here.
local function next_seq(name)
  S.seen[name] = (S.seen[name] or 0) + 1
  local before = 0
  for _, d in ipairs(S.index.defs[name] or {}) do
    if S.chapter and d.chapter < S.chapter then before = before + 1 end
  end
  return before + S.seen[name]
end

-- Where a chunk's first definition lives: chapter, id (nil if undefined).
local function definition(name)
  local defs = S.index.defs[name]
  if not defs or #defs == 0 then return nil end
  for _, d in ipairs(defs) do
    if d.seq == 1 then return d.chapter, chunk_id(name, 1) end
  end
  return defs[1].chapter, chunk_id(name, 1)
end

-- Label and link target of the chunk that uses another one.
local function user_target(use)
  local path = use.user:match('^file:(.*)$')
  if path then
    local f = S.index.files[path]
    return path, (f and f.chapter or use.chapter), file_id(path), true
  end
  -- the block of that name containing the use: last def at or above it
  local best
  for _, d in ipairs(S.index.defs[use.user] or {}) do
    if d.chapter == use.chapter and d.line <= use.line
       and (not best or d.line > best.line) then best = d end
  end
  local seq = best and best.seq or 1
  local chapter = best and best.chapter or use.chapter
  return use.user, chapter, chunk_id(use.user, seq), false
end

------------------------------------------------------------------------
-- Chunk rendering
------------------------------------------------------------------------

local function angle(name_inlines)
  local out = pandoc.List({ pandoc.Str('⟨') })
  out:extend(name_inlines)
  out:insert(pandoc.Str('⟩'))
  return out
end

-- "used in ⟨a⟩, ⟨b⟩" line for the first block of a named chunk.
local function used_in(name)
  local seen, links = {}, pandoc.List()
  for _, use in ipairs(S.index.uses[name] or {}) do
    local label, chapter, id, is_file = user_target(use)
    local key = chapter .. '#' .. id
    if not seen[key] then
      seen[key] = true
      local text = is_file and { pandoc.Code(label) } or angle({ pandoc.Str(label) })
      if #links > 0 then links:insert(pandoc.Str(', ')) end
      links:insert(pandoc.Link(text, href(chapter, id)))
    end
  end
  if #links == 0 then return nil end
  local out = pandoc.List({ pandoc.Str('used in'), pandoc.Space() })
  out:extend(links)
  return pandoc.Span(out, pandoc.Attr('', { 'chunk-used' }))
end

-- Caption above a chunk: name, ≡ or +≡, and the "used in" line.
local function chunk_caption(kind, name, seq, id)
  local inl = pandoc.List()
  if kind == 'file' then
    inl:insert(pandoc.Span({ pandoc.Code(name) }, pandoc.Attr('', { 'chunk-name', 'chunk-file' })))
    inl:extend({ pandoc.Space(), pandoc.Str('≡') })
  else
    local target = seq == 1 and ('#' .. id) or href(definition(name))
    local label = pandoc.Link(angle({ pandoc.Str(name) }), target)
    inl:insert(pandoc.Span({ label }, pandoc.Attr('', { 'chunk-name' })))
    inl:extend({ pandoc.Space(), pandoc.Str(seq == 1 and '≡' or '+≡') })
    if seq == 1 then
      local u = used_in(name)
      if u then inl:extend({ pandoc.Space(), u }) end
    end
  end
  if S.latex then
    inl:insert(1, pandoc.RawInline('latex', '\\chunkcaption{\\hypertarget{' .. id .. '}{}'))
    inl:insert(pandoc.RawInline('latex', '}'))
    return pandoc.Plain(inl)
  end
  return pandoc.Div({ pandoc.Plain(inl) }, pandoc.Attr('', { 'chunk-caption' }))
end

-- One `<<name>>` line, rendered as a link that looks like code.
local function ref_line(indent, name)
  local chapter, id = definition(name)
  if not id then
    fail("unresolved chunk reference '" .. name .. "'")
    id = 'chunk-' .. slug(name)
  end
  local target = href(chapter, id)
  if S.latex then
    return pandoc.RawBlock('latex', '\\chunkref{' .. indent:gsub('\t', '    '):len() .. '}{' ..
      id .. '}{' .. latex_escape(name) .. '}')
  end
  return pandoc.RawBlock('html', '<pre class="chunk-ref"><code>' .. html_escape(indent) ..
    '<a class="chunk-link" href="' .. html_escape(target) .. '">⟨' ..
    html_escape(name) .. '⟩</a></code></pre>')
end

-- Split a chunk's code at its reference lines: code, ref, code, ...
local function chunk_pieces(cb)
  local pieces, buf = pandoc.List(), {}
  local function flush()
    if #buf > 0 then
      pieces:insert(pandoc.CodeBlock(table.concat(buf, '\n'), pandoc.Attr('', cb.classes)))
      buf = {}
    end
  end
  for line in (cb.text .. '\n'):gmatch('([^\n]*)\n') do
    local indent, name = line:match('^(%s*)<<(.-)>>%s*$')
    if name then
      flush()
      pieces:insert(ref_line(indent, name))
    else
      buf[#buf + 1] = line
    end
  end
  flush()
  return pieces
end

-- LaTeX: a page break here unless `lines` more lines fit on this page.
local function needspace(lines)
  return pandoc.RawBlock('latex', string.format('\\needspace{%d\\baselineskip}', lines))
end

-- A chunk (root or named) becomes caption + pieces inside a "chunk" box.
local function weave_chunk(cb)
  local kind, name, seq, id
  if cb.attributes.file then
    kind, name, seq = 'file', cb.attributes.file, 1
    id = unique_id(file_id(name))
  else
    kind, name = 'def', cb.identifier
    seq = next_seq(name)
    id = unique_id(chunk_id(name, seq))
  end
  local body = chunk_pieces(cb)
  if S.latex then
    -- the caption never ends a page: it stays with the chunk's first lines (four at most)
    local _, lines = cb.text:gsub('\n', '')
    local out = pandoc.List({ needspace(math.min(lines + 1, 4) + 4),
      chunk_caption(kind, name, seq, id),
      pandoc.RawBlock('latex', '\\begin{chunkbody}') })
    out:extend(body)
    out:insert(pandoc.RawBlock('latex', '\\end{chunkbody}'))
    return out
  end
  local classes = { 'chunk', seq == 1 and 'chunk-first' or 'chunk-continued' }
  return pandoc.Div({
    chunk_caption(kind, name, seq, id),
    pandoc.Div(body, pandoc.Attr('', { 'chunk-body' })),
  }, pandoc.Attr(id, classes))
end

------------------------------------------------------------------------
-- Measured data: CSV, provenance, staleness
------------------------------------------------------------------------

-- data-dir/KEY.EXT parsed by parse(text), read once into cache; nil if the file is missing.
local function load_once(cache, key, ext, parse)
  if cache[key] == nil then
    local text = read_file(S.data_dir .. '/' .. key .. ext)
    cache[key] = text and parse(text) or false
  end
  return cache[key] or nil
end

-- A CSV as a list of {column -> string}.
local function parse_csv(text)
  local rows, header = {}, nil
  for line in text:gmatch('[^\n]+') do
    line = line:gsub('\r$', '')
    if not header then
      header = split_fields(line, ',')
    elseif line:match('%S') then
      local f, row = split_fields(line, ','), {}
      for i, col in ipairs(header) do row[col] = f[i] or '' end
      rows[#rows + 1] = row
    end
  end
  return rows
end

-- Provenance lines "key: value" as a table.
local function parse_provenance(text)
  local p = {}
  for line in text:gmatch('[^\n]+') do
    local k, v = line:match('^%s*([%w_%-]+)%s*:%s*(.-)%s*$')
    if k then p[k] = v end
  end
  return p
end

-- Rows of data-dir/gpu/csv.csv, or nil.
local function load_csv(gpu, csv)
  return load_once(S.data, gpu .. '/' .. csv, '.csv', parse_csv)
end

-- Provenance key/value pairs beside the CSV, or nil.
local function load_provenance(gpu, csv)
  return load_once(S.prov, gpu .. '/' .. csv, '.provenance', parse_provenance)
end

-- The name of a GPU from the provenance beside `csv`, else from any of its provenance files
-- (a GPU without data for one chapter is still named), else its slug.
local function gpu_name(gpu, csv)
  local p = csv and load_provenance(gpu, csv)
  if not (p and p.gpu) then
    local ls = io.popen('ls "' .. S.data_dir .. '/' .. gpu .. '" 2>/dev/null')
    for f in (ls and ls:lines() or function() end) do
      local other = f:match('^(.*)%.provenance$')
      p = other and load_provenance(gpu, other)
      if p and p.gpu then break end
    end
    if ls then ls:close() end
  end
  return (p and p.gpu) or gpu
end

local function gpu_date(gpu, csv)
  local p = load_provenance(gpu, csv)
  local d = p and p.date or ''
  return d:match('^(%d%d%d%d%-%d%d%-%d%d)') or (d ~= '' and d) or 'an unknown date'
end

-- The sources as the Makefile hashes them: without the #line directives, which
-- move when prose above the code is edited although the code stays the same.
local function without_line_directives(text)
  local kept = {}
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    if not line:match('^%s*#line ') then kept[#kept + 1] = line end
  end
  return table.concat(kept, '\n')
end

-- Why the data of gpu/csv is stale (a string), or false when current.
local function staleness(gpu, csv)
  local key = gpu .. '/' .. csv
  if S.stale[key] == nil then
    local p = load_provenance(gpu, csv)
    local reason = false
    if not p or not p.sources or not p.sources_sha1 then
      reason = 'no provenance recorded'
    else
      local parts = {}
      for _, src in ipairs(words(p.sources)) do
        local bytes = read_file(src, 'rb')
        if not bytes then reason = 'missing source ' .. src; break end
        parts[#parts + 1] = bytes
      end
      if not reason and utils.sha1(without_line_directives(table.concat(parts)))
          ~= p.sources_sha1:lower() then
        reason = 'sources changed'
      end
    end
    S.stale[key] = reason
  end
  return S.stale[key]
end

-- GPUs that have data for `csv`, reference first, then the others (earlier GPUs and the
-- reader's own); and those that have none.
local function gpus_with(csv)
  local with, without = {}, {}
  for _, g in ipairs(S.gpus) do
    local list = load_csv(g, csv) and with or without
    list[#list + 1] = g
  end
  return with, without
end

-- A note box: HTML div.note.KIND; LaTeX environment booknote/bookstale.
local function note_div(kind, inlines)
  local blocks = pandoc.List({ pandoc.Para(inlines) })
  if S.latex then
    local env = kind == 'stale' and 'bookstale' or 'booknote'
    blocks:insert(1, pandoc.RawBlock('latex', '\\begin{' .. env .. '}'))
    blocks:insert(pandoc.RawBlock('latex', '\\end{' .. env .. '}'))
  end
  return pandoc.Div(blocks, pandoc.Attr('', { 'note', kind }))
end

local function stale_note(gpu, csv)
  local why = staleness(gpu, csv)
  if not why then return nil end
  local since = why == 'sources changed' and ('sources changed since ' .. gpu_date(gpu, csv)) or why
  local inl = pandoc.List({ pandoc.Strong({ pandoc.Str('Stale results.') }), pandoc.Space() })
  inl:extend(pandoc.read('These results were measured from an older version of the code (' ..
    since .. '); run', 'markdown').blocks[1].content)
  inl:extend({ pandoc.Space(), pandoc.Code('make bench'), pandoc.Space(), pandoc.Str('to refresh'),
    pandoc.Space(), pandoc.Str('(' .. gpu_name(gpu, csv) .. ').') })
  return note_div('stale', inl)
end

local function no_data_note()
  return note_div('no-data', {
    pandoc.Str('No measurements for this chapter yet: run'), pandoc.Space(),
    pandoc.Code('make bench'), pandoc.Space(), pandoc.Str('on a GPU.') })
end

------------------------------------------------------------------------
-- Number formatting
------------------------------------------------------------------------

local NNBSP = '\u{202F}'   -- narrow no-break space between number and unit

-- The unit of each CSV column's values.
local UNITS = { gbps = 'GB/s', time_us = 'µs', tflops = 'TFLOP/s', pct_sol = '%' }

-- Number and unit for a value of column `col` (unit may be '').
-- in_table: the number goes in a column whose unit the caption gives, so a time stays in µs.
local function format_parts(col, raw, in_table)
  local v = tonumber(raw)
  if not v then return raw, '' end
  if col == 'gbps' then
    return string.format(v < 10 and '%.1f' or '%.0f', v), UNITS.gbps
  elseif col == 'time_us' then
    if v >= 1000 and in_table then return string.format('%.0f', v), UNITS.time_us end
    if v >= 1000 then return string.format('%.2f', v / 1000), 'ms' end
    return string.format(v < 1 and '%.2f' or '%.1f', v), UNITS.time_us
  elseif col == 'tflops' then
    return string.format(v < 100 and '%.1f' or '%.0f', v), UNITS.tflops
  elseif col == 'pct_sol' then
    return string.format(v < 1 and '%.1f' or '%.0f', v), UNITS.pct_sol
  elseif col == 'max_rel_err' then
    return string.format('%.1e', v), ''
  elseif col == 'smem' then
    return string.format(v < 10240 and '%.1f' or '%.0f', v / 1024), 'KiB'
  elseif col == 'local' then
    return string.format('%.0f', v), 'B'
  elseif col == 'occupancy' then
    return string.format('%.0f', v), '%'
  end
  return raw, ''
end

local function with_unit(num, unit)
  if unit == '' then return num end
  if unit == '%' then return num .. '%' end
  return num .. NNBSP .. unit
end

local function format_value(col, raw)
  return with_unit(format_parts(col, raw))
end

local UNIT_OF = { gbps = 'Effective bandwidth (GB/s)', time_us = 'Time (µs)',
  tflops = 'Throughput (TFLOP/s)', pct_sol = 'Percent of the speed of light',
  max_rel_err = 'Maximum relative error' }

-- Size header: 2^k when an exact power of two or written as one (2^25:10), else the raw key.
local size_inlines
function size_inlines(size)
  local n = tonumber(size)
  if n and n >= 2 and n == math.floor(n) then
    local k = math.floor(math.log(n, 2) + 0.5)
    if 2 ^ k == n then
      return { pandoc.Str('2'), pandoc.Superscript({ pandoc.Str(tostring(k)) }) }
    end
  end
  local k, rest = size:match('^2%^(%d+)(.*)$')  -- a key written as a power: 2^25:10
  if k then return { pandoc.Str('2'), pandoc.Superscript({ pandoc.Str(k) }), pandoc.Str(rest) } end
  local rows, cols = size:match('^(%d+)x(%d+)$')  -- a shape ROWSxCOLS: 2^20×32
  if rows then
    local out = pandoc.List(size_inlines(rows))
    out:insert(pandoc.Str('×' .. cols))
    return out
  end
  if size:match('^[%dx:]+$') and size:find('[x:]') then
    -- a shape: counts joined by x and :, each a power of two from 2^10 up written as one
    -- (1048576x128:0:1048576 becomes 2^20×128:0:2^20)
    local out = pandoc.List()
    for token, sep in size:gmatch('(%d+)([x:]?)') do
      local n = tonumber(token)
      local k = n >= 1024 and math.floor(math.log(n, 2) + 0.5) or nil
      if k and 2 ^ k == n then out:extend(size_inlines(token)) else out:insert(pandoc.Str(token)) end
      if sep ~= '' then out:insert(pandoc.Str(sep == 'x' and '×' or ':')) end
    end
    return out
  end
  return { pandoc.Str(size) }
end

-- About how many characters wide a size header is (a superscript counts as half).
local function size_width(size)
  local w = 0
  for _, il in ipairs(size_inlines(size)) do
    if il.t == 'Str' then w = w + utf8.len(il.text)
    else w = w + 0.5 * utf8.len(pandoc.utils.stringify(il)) end
  end
  return w
end

------------------------------------------------------------------------
-- Result keys: [csv/version/dtype/size/column]{.r}
------------------------------------------------------------------------

-- Resources keys [res:...]{.r}: defined with the resources blocks (further below).
local res_key_value, res_span_impl

-- Raw value of one key, or nil.
local function key_value(key, gpu)
  local csv, version, dtype, size, col =
    key:match('^%s*([^/]+)/([^/]+)/([^/]*)/([^/]+)/([^/]+)%s*$')
  if not csv then return nil end
  local rows = load_csv(gpu, csv)
  for _, r in ipairs(rows or {}) do
    if r.version == version and r.dtype == dtype and r.size == size then
      local v = r[col]
      if v == nil or v == '' then return nil end
      return v, col, csv
    end
  end
  return nil
end

-- The value of a key span on its gpu= (default: `gpu`, else the first GPU with data for
-- its CSV: the reference, unless it has none).  A key that first GPU lacks is an error;
-- one another GPU lacks is a dash: not every GPU ran every peer.
-- The value of a key or of a ratio "A / B" on one GPU, or nil where it lacks the data.
local function expr_value(expr, gpu)
  local a, b = expr:match('^(.-)%s+/%s+(.-)$')
  if a then
    local x, y = tonumber((key_value(a, gpu))), tonumber((key_value(b, gpu)))
    if x and y and y ~= 0 then return x / y, true end
    return nil
  end
  return tonumber((key_value(expr, gpu))), false
end

local function result_span(span, gpu)
  local key = stringify(span.content)
  if key:match('^%s*res:') then return res_span_impl(span) end
  local first = gpus_with(key:match('^%s*([^/]+)/') or '')[1] or S.ref_gpu
  gpu = span.attributes.gpu or gpu or first
  local text
  if key:match('%s/%s') then
    local r = expr_value(key, gpu)
    if r then text = string.format(r >= 10 and '%.1f×' or '%.2f×', r) end
  else
    local v, col = key_value(key, gpu)
    if v then text = format_value(col, v) end
  end
  if not text and gpu ~= first and not span.attributes.gpu then
    return pandoc.Span({ pandoc.Str('–') }, pandoc.Attr('', { 'r-none' }, { { 'title', key } }))
  end
  if not text then
    local msg = "unresolved result key '" .. key .. "'" ..
      (gpu ~= first and (' (gpu=' .. gpu .. ')') or '')
    if not S.lenient then fail(msg) else warn(msg) end
    -- lenient drafts show a visible marker (tests/book_test.sh fails on it)
    return pandoc.Span({ pandoc.Str('[no data: ' .. key .. ']') },
      pandoc.Attr('', { 'r-missing' }, { { 'title', key } }))
  end
  return pandoc.Span({ pandoc.Str(text) },
    pandoc.Attr('', { 'r-value' }, { { 'title', key } }))
end

-- A claim's value, with a digit more than the book's numbers: it is set against a bound.
local function format_claim_value(v, ratio, col)
  if ratio then return string.format(v >= 10 and '%.2f×' or '%.3f×', v) end
  return with_unit(string.format(math.abs(v) >= 1000 and '%.0f' or '%.4g', v), UNITS[col] or '')
end

-- The (dtype, size) pairs a claim with wildcards ranges over on one GPU: its expression's
-- dtype and size fields may be `*` (the same in every key of a ratio), standing for every
-- value with a row of the first key's version in that GPU's CSV; `over` (sizes, comma-
-- separated) keeps only those sizes. Without wildcards, the expression itself.
local function claim_cases(expr, over, gpu)
  local csv, version, dtype, size = expr:match('^%s*([^/]+)/([^/]+)/([^/]*)/([^/]+)/')
  if not csv or (dtype ~= '*' and size ~= '*') then return { { expr = expr } }, {} end
  local keep
  if over then
    keep = {}
    for s in over:gmatch('[^,%s]+') do keep[s] = true end
  end
  local cases, seen = {}, {}
  for _, r in ipairs(load_csv(gpu, csv) or {}) do
    local d = dtype == '*' and r.dtype or dtype
    local z = size == '*' and r.size or size
    if r.version == version and r.dtype == d and r.size == z and (not keep or keep[z]) and not seen[d .. '/' .. z] then
      seen[d .. '/' .. z] = true
      local function fill(key)
        local c, v, dd, zz, col = key:match('^%s*([^/]+)/([^/]+)/([^/]*)/([^/]+)/([^/]+)%s*$')
        if not c then return key end
        return c .. '/' .. v .. '/' .. (dd == '*' and d or dd) .. '/' .. (zz == '*' and z or zz) .. '/' .. col
      end
      local a, b = expr:match('^(.-)%s+/%s+(.-)$')
      local e = a and (fill(a) .. ' / ' .. fill(b)) or fill(expr)
      table.insert(cases, { expr = e, label = (dtype == '*' and d or '') ..
        ((dtype == '*' and size == '*') and ' ' or '') .. (size == '*' and z or '') })
      if keep then keep[z] = 'seen' end
    end
  end
  local absent = {}  -- sizes of `over` with no row
  for z, state in pairs(keep or {}) do
    if state ~= 'seen' then table.insert(absent, z) end
  end
  table.sort(absent)
  return cases, absent
end

-- A claim's range "LO:HI" as two numbers (either may be nil), or nil when malformed.
local function claim_range(range)
  local lo, hi = (range or ''):match('^%s*([^:]*):([^:]*)%s*$')
  lo, hi = tonumber(lo), tonumber(hi)
  if not (range or ''):find(':') or (lo == nil and hi == nil) then return nil end
  return lo, hi
end

-- A claim on one GPU: the cases outside [lo, hi] as strings, how many cases had a value,
-- the cases, and the sizes of `over` without a row.
local function claim_misses(expr, over, lo, hi, gpu)
  local col = expr:match('/([%w_]+)%s*$')
  local cases, absent = claim_cases(expr, over, gpu)
  local misses, values = pandoc.List(), 0
  for _, case in ipairs(cases) do
    local v, ratio = expr_value(case.expr, gpu)
    if v ~= nil then
      values = values + 1
      if (lo and v < lo) or (hi and v > hi) then
        misses:insert((case.label and (case.label .. ' ') or '') .. format_claim_value(v, ratio, col))
      end
    end
  end
  return misses, values, cases, absent
end

-- A claim: [text]{.claim expr=... in=LO:HI}. True on the reference GPU (the first with the
-- CSV) or an error; where it is false on another GPU shown, the text is marked and that
-- GPU's value follows it. With wildcards (claim_cases), it must hold in every case that
-- has data, and the failing cases are named with their values.
local function claim_span(span)
  local expr, range, over = span.attributes.expr, span.attributes['in'], span.attributes.over
  local where = "claim '" .. stringify(span.content) .. "'"
  if not expr or not range then
    fail(where .. ': needs expr= and in=LO:HI')
    return span
  end
  local lo, hi = claim_range(range)
  if not (lo or hi) then
    fail(where .. ": in='" .. range .. "' is not LO:HI")
    return span
  end
  local num, den = expr:match('^%s*(.-)%s+/%s+(.-)%s*$')
  if num and num == den then  -- a ratio of a key to itself is 1 whatever was measured
    fail(where .. ": '" .. expr .. "' divides a key by itself: a claim that cannot fail")
    return span
  end
  local csv = expr:match('^%s*([^/]+)/')
  local failed = pandoc.List()
  for i, gpu in ipairs(gpus_with(csv or '')) do
    local misses, values, cases, absent = claim_misses(expr, over, lo, hi, gpu)
    if i == 1 then
      if #absent > 0 then fail(where .. ': no row for ' .. table.concat(absent, ', ') .. ' of over= on ' .. gpu) end
      if #cases == 0 then
        fail(where .. ": '" .. expr .. "' matches no row on " .. gpu)
      elseif values < #cases and (not cases[1].label or over or values == 0) then
        fail(where .. ": no value for '" .. expr .. "' on " .. gpu)
      end
      if #misses > 0 then
        fail(where .. ' is false on the reference data (' .. gpu .. '): ' .. table.concat(misses, ', ') ..
          ', outside ' .. range)
      end
    end
    if #misses > 0 then failed:insert(gpu_name(gpu, csv) .. ': ' .. table.concat(misses, ', ')) end
  end
  local title = expr .. ' in ' .. range .. (over and (' over ' .. over) or '')
  local attr = pandoc.Attr('', { 'claim' }, { { 'title', title } })
  if #failed == 0 then return pandoc.Span(span.content, attr) end
  local out = pandoc.List({ pandoc.Span(span.content, pandoc.Attr('', { 'claim', 'claim-fails' },
    { { 'title', title } })) })
  out:insert(pandoc.Space())
  out:insert(pandoc.Span({ pandoc.Str('(not on the ' .. table.concat(failed, '; the ') .. ')') },
    pandoc.Attr('', { 'claim-note' })))
  return out
end

------------------------------------------------------------------------
-- Results tables: ::: {.results csv=NAME metric=COL ...}
------------------------------------------------------------------------

local function is_numeric_list(xs)
  for _, x in ipairs(xs) do if not tonumber(x) then return false end end
  return true
end

-- Rows and size columns of one GPU's table, after filters.
local function table_rows(rows, opts)
  local wanted = {}
  for i, v in ipairs(opts.versions) do wanted[v] = i end
  -- group rows by (version, dtype), ceilings first, keep CSV order otherwise
  local groups, order, sizes, seen_size = {}, {}, {}, {}
  for _, r in ipairs(rows) do
    if (opts.dtype == nil or r.dtype == opts.dtype)
       and (#opts.versions == 0 or wanted[r.version]) then
      local k = r.version .. '\0' .. r.dtype
      if not groups[k] then
        groups[k] = { version = r.version, kind = r.kind, dtype = r.dtype, cells = {} }
        order[#order + 1] = groups[k]
      end
      groups[k].cells[r.size] = r
      if r.kind ~= 'ceiling' and not seen_size[r.size] then
        seen_size[r.size] = true
        sizes[#sizes + 1] = r.size
      end
    end
  end
  if #opts.sizes > 0 then sizes = opts.sizes
  elseif is_numeric_list(sizes) then
    table.sort(sizes, function(x, y) return tonumber(x) < tonumber(y) end)
  end
  for i, g in ipairs(order) do g.pos = i end
  table.sort(order, function(x, y)
    local rx, ry = (x.kind == 'ceiling') and 0 or 1, (y.kind == 'ceiling') and 0 or 1
    if rx ~= ry then return rx < ry end
    if #opts.versions > 0 then
      local wx, wy = wanted[x.version], wanted[y.version]
      if wx ~= wy then return wx < wy end
    end
    return x.pos < y.pos
  end)
  return order, sizes
end

local LOWER_IS_BETTER = { time_us = true, max_rel_err = true }

-- Best "ours" value per size column (bolded in the table).
local function best_per_size(groups, sizes, metric)
  local best = {}
  for _, s in ipairs(sizes) do
    for _, g in ipairs(groups) do
      local r = g.cells[s]
      local v = r and r.status ~= 'fail' and tonumber(r[metric])
      if g.kind == 'ours' and v then
        if not best[s] or (LOWER_IS_BETTER[metric] and v < best[s]) or
           (not LOWER_IS_BETTER[metric] and v > best[s]) then best[s] = v end
      end
    end
  end
  return best
end

local function cell(inlines) return { pandoc.Plain(inlines) } end

local function metric_cell(r, metric, best)
  if not r then return cell({ pandoc.Str('–') }) end
  local raw = r[metric]
  local has = raw ~= nil and raw ~= ''
  if r.status == 'fail' then
    -- an inexact lesson is timed although it fails: its value, marked
    local mark = pandoc.Span({ pandoc.Strong({ pandoc.Str('FAIL') }) }, pandoc.Attr('', { 'fail' }))
    if not has then return cell({ mark }) end
    return cell({ pandoc.Str((format_parts(metric, raw, true))), pandoc.Space(), mark })
  end
  if not has then return cell({ pandoc.Str('–') }) end
  local num = format_parts(metric, raw, true)
  local inl = { pandoc.Str(num) }
  if best and tonumber(raw) == best and r.kind == 'ours' then inl = { pandoc.Strong(inl) } end
  return cell(inl)
end

-- Size columns that one table can hold: the PDF's page is narrower than a screen (one
-- fewer where a dtype column is shown, and on the page where a version's name is long).  Wider
-- tables are split by size columns, also where the headers are wide: a column is as wide as its
-- header, or a number (8).
local SIZE_COLUMNS = { latex = 7, html = 10 }

-- The sizes in parts of at most `most` columns and `most` columns of numbers' width, as
-- even as possible.
local function size_parts(sizes, most)
  local width = 0
  for _, s in ipairs(sizes) do width = width + math.max(size_width(s), 8) end
  local n = math.max(math.ceil(#sizes / most), math.ceil(width / (8 * most)))
  if n <= 1 then return { sizes } end
  local per, parts = math.ceil(#sizes / n), {}
  for i = 1, #sizes, per do
    parts[#parts + 1] = { table.unpack(sizes, i, math.min(i + per - 1, #sizes)) }
  end
  return parts
end

-- Whether a group has a value (or a failed check) at one of the sizes: a table shows only
-- rows that say something in it.
local function has_value(g, sizes, metric)
  for _, s in ipairs(sizes) do
    local r = g.cells[s]
    if r and ((r[metric] or '') ~= '' or r.status == 'fail') then return true end
  end
  return false
end

-- LaTeX: keep a table of `rows` rows and a caption of `chars` characters on one page
-- where it fits on one (a longtable otherwise breaks anywhere, even before its last row).
local function keep_together(rows, chars)
  return needspace(rows + 8 + math.ceil(chars / 110))
end

-- "No data for the NAME." for each of the GPUs `without` data for a table or figure.
local function no_data_for(without)
  local out = {}
  for _, g in ipairs(without) do out[#out + 1] = 'No data for the ' .. gpu_name(g) .. '.' end
  return table.concat(out, ' ')
end

-- Caption inlines that say where the numbers come from: for the first GPU "Measured on
-- **NAME** on DATE by `make bench`.", for the next ones "The same on **NAME**, measured on
-- DATE."; then "No data for the NAME." for each GPU without this CSV.
local function measured_on(gpu, csv, first, without)
  local md = first and ('Measured on **' .. gpu_name(gpu, csv) .. '** on ' .. gpu_date(gpu, csv) ..
    ' by `make bench`.') or ('The same on **' .. gpu_name(gpu, csv) .. '**, measured on ' ..
    gpu_date(gpu, csv) .. '.')
  local out = pandoc.List(pandoc.read(md, 'markdown').blocks[1].content)
  if first and #without > 0 then out:extend({ pandoc.Space(), pandoc.Str(no_data_for(without)) }) end
  return out
end

-- The pandoc Tables for one GPU: one, or one per part of the sizes where they are too
-- many for the page.
local function gpu_tables(gpu, opts, caption_inlines, first, without)
  local groups, all_sizes = table_rows(load_csv(gpu, opts.csv), opts)
  -- the size columns with a value in them
  local sizes = {}
  for _, s in ipairs(all_sizes) do
    for _, g in ipairs(groups) do
      if g.kind ~= 'ceiling' and has_value(g, { s }, opts.metric) then
        sizes[#sizes + 1] = s
        break
      end
    end
  end
  local dtypes = {}  -- a dtype column where the versions differ in it (ceilings are f32)
  for _, g in ipairs(groups) do if g.kind ~= 'ceiling' then dtypes[g.dtype] = true end end
  local show_dtype = next(dtypes) ~= nil and next(dtypes, next(dtypes)) ~= nil
  local best = best_per_size(groups, sizes, opts.metric)

  -- ceilings measured at a size not shown are mentioned in the caption instead
  local offside = pandoc.List()
  for _, g in ipairs(groups) do
    if g.kind == 'ceiling' and not has_value(g, sizes, opts.metric) then
      for s, r in pairs(g.cells) do
        if (r[opts.metric] or '') ~= '' then
          offside:insert(#offside > 0 and pandoc.Str(', ') or pandoc.Str('Ceilings: '))
          offside:extend({ pandoc.Code(g.version), pandoc.Space(),
            pandoc.Str(format_value(opts.metric, r[opts.metric])), pandoc.Space(),
            pandoc.Str('at'), pandoc.Space() })
          offside:extend(size_inlines(s))
        end
      end
    end
  end

  local cap = pandoc.List()
  if first then
    -- the author's caption, or a generic one naming the metric
    local lead = (UNIT_OF[opts.metric] or opts.metric) .. ' by version and number of elements.'
    if #caption_inlines > 0 then cap:extend(caption_inlines)
    else cap:extend(pandoc.read(lead, 'markdown').blocks[1].content) end
    cap:insert(pandoc.Space())
  end
  cap:extend(measured_on(gpu, opts.csv, first, without))
  if #offside > 0 then
    cap:insert(pandoc.Space())
    cap:extend(offside)
    cap:insert(pandoc.Str('.'))
  end

  local tables = pandoc.List()
  local most = SIZE_COLUMNS[S.latex and 'latex' or 'html'] - (show_dtype and 1 or 0)
  if S.latex then  -- on the page, each 10 characters of the longest version name past 24 take a column's room
    local name = 0
    for _, g in ipairs(groups) do name = math.max(name, utf8.len(g.version)) end
    most = math.max(1, most - math.ceil(math.max(0, name - 24) / 10))
  end
  local parts = size_parts(sizes, most)
  for k, part in ipairs(parts) do
    local headers = { cell({ pandoc.Str('version') }), cell({ pandoc.Str('kind') }) }
    local aligns = { pandoc.AlignLeft, pandoc.AlignLeft }
    if show_dtype then
      headers[#headers + 1] = cell({ pandoc.Str('dtype') })
      aligns[#aligns + 1] = pandoc.AlignLeft
    end
    for _, s in ipairs(part) do
      headers[#headers + 1] = cell(size_inlines(s))
      aligns[#aligns + 1] = pandoc.AlignRight
    end
    local rows = {}
    for _, g in ipairs(groups) do
      if has_value(g, part, opts.metric) then
        local kind = g.kind == 'ours' and '' or g.kind
        local row = { cell({ pandoc.Code(g.version) }),
          cell(kind ~= '' and { pandoc.Emph({ pandoc.Str(kind) }) } or {}) }
        if show_dtype then row[#row + 1] = cell({ pandoc.Str(g.dtype) }) end
        for _, s in ipairs(part) do
          row[#row + 1] = metric_cell(g.cells[s], opts.metric, best[s])
        end
        rows[#rows + 1] = row
      end
    end
    local c = cap
    if #parts > 1 then
      c = pandoc.List({ pandoc.Str('(' .. k .. ' of ' .. #parts .. ')'), pandoc.Space() })
      c:extend(cap)
    end
    local st = pandoc.SimpleTable(c, aligns, {}, headers, rows)
    for i = 1, #aligns do st.widths[i] = 0 end
    if S.latex then tables:insert(keep_together(#rows, #stringify(c))) end
    tables:insert(utils.from_simple_table(st))
  end
  return tables
end

-- One block per GPU with data, in book order, each holding its stale note (if any) and
-- its tables, built by tables_of(gpu, first, without).
local function per_gpu(csv, tables_of)
  local out = pandoc.List()
  local with, without = gpus_with(csv)
  if #with == 0 then out:insert(no_data_note()) end
  for i, gpu in ipairs(with) do
    local blocks = pandoc.List()
    local note = stale_note(gpu, csv)
    if note then blocks:insert(note) end
    if S.latex then blocks:insert(pandoc.RawBlock('latex', '\\begin{resultstable}')) end
    blocks:extend(tables_of(gpu, i == 1, without))
    if S.latex then blocks:insert(pandoc.RawBlock('latex', '\\end{resultstable}')) end
    local classes = { 'results-table', gpu == S.ref_gpu and 'ref-gpu' or 'other-gpu' }
    out:insert(pandoc.Div(blocks, pandoc.Attr('', classes, { { 'data-gpu', gpu } })))
  end
  return out
end

local function results_div(div)
  local a = div.attributes
  local opts = {
    csv = a.csv or (S.chapter and chapter_csv(S.chapter)) or '',
    metric = a.metric or 'gbps',
    dtype = a.dtype,
    versions = words(a.versions),
    sizes = words(a.sizes),
  }
  local caption = pandoc.List()
  for _, b in ipairs(div.content) do
    if b.t == 'Para' or b.t == 'Plain' then
      if #caption > 0 then caption:insert(pandoc.Space()) end
      caption:extend(b.content)
    end
  end
  div.content = per_gpu(opts.csv, function(gpu, first, without)
    return gpu_tables(gpu, opts, caption, first, without)
  end)
  return div
end

-- ::: {.kernel-resources csv=C dtype=D size=S} caption :::: what each version's kernels
-- need at that size (the harness's last five columns): one table per GPU with data, a row
-- per version the harness could look into; an error where none has the columns.
local function kernel_resources_div(div)
  local a = div.attributes
  local csv = a.csv or (S.chapter and chapter_csv(S.chapter)) or ''
  local caption = pandoc.List()
  for _, b in ipairs(div.content) do
    if b.t == 'Para' or b.t == 'Plain' then
      if #caption > 0 then caption:insert(pandoc.Space()) end
      caption:extend(b.content)
    end
  end
  local cols = { { 'kernels', 'kernels' }, { 'regs', 'registers' }, { 'smem', 'shared (KiB)' },
    { 'local', 'local (B)' }, { 'occupancy', 'occupancy (%)' } }
  div.content = per_gpu(csv, function(gpu, first, without)
    local rows = {}
    for _, r in ipairs(load_csv(gpu, csv) or {}) do
      if r.kind ~= 'ceiling' and (not a.dtype or r.dtype == a.dtype) and (not a.size or r.size == a.size)
          and (r.kernels or '') ~= '' then
        local row = { cell({ pandoc.Code(r.version) }) }
        for _, c in ipairs(cols) do
          local num = format_parts(c[1], r[c[1]])
          row[#row + 1] = cell({ pandoc.Str(num) })
        end
        rows[#rows + 1] = row
      end
    end
    if #rows == 0 then
      return { pandoc.Para({ pandoc.Str('No kernel resources in the ' .. gpu_name(gpu) .. "'s data.") }) }
    end
    local headers, aligns = { cell({ pandoc.Str('version') }) }, { pandoc.AlignLeft }
    for _, c in ipairs(cols) do
      headers[#headers + 1] = cell({ pandoc.Str(c[2]) })
      aligns[#aligns + 1] = pandoc.AlignRight
    end
    local cap = pandoc.List()
    if first then cap:extend(caption); cap:insert(pandoc.Space()) end
    cap:extend(measured_on(gpu, csv, first, without))
    local st = pandoc.SimpleTable(cap, aligns, {}, headers, rows)
    for i = 1, #aligns do st.widths[i] = 0 end
    return { utils.from_simple_table(st) }
  end)
  return div
end

------------------------------------------------------------------------
-- Tables of result keys: a Markdown table whose cells hold [key]{.r} spans (ratios)
------------------------------------------------------------------------

-- The CSV named by the first result key in a block, or nil.
local function first_key_csv(block)
  local csv
  pandoc.walk_block(block, { Span = function(sp)
    if not csv and sp.classes:includes('r') and not sp.attributes.gpu
        and not stringify(sp.content):match('^%s*res:') then
      csv = stringify(sp.content):match('^%s*([^/]+)/')
    end
  end })
  return csv
end

-- The table for one GPU: its keys resolved on that GPU (a key the reference lacks is an
-- error, one another GPU lacks a dash), the columns of numbers right-aligned, the rows
-- without a number left out, and the caption saying which GPU.
local function key_table_for(tbl, gpu, csv, first, without)
  local t = pandoc.walk_block(tbl, { Span = function(sp)
    if sp.classes:includes('r') then return result_span(sp, gpu) end
  end })
  -- no widths: each column as wide as its contents (a Markdown table's source lines give
  -- relative widths otherwise)
  for i, cs in ipairs(t.colspecs) do t.colspecs[i] = { cs[1] } end
  for _, body in ipairs(t.bodies) do
    local kept = pandoc.List()
    for _, row in ipairs(body.body) do
      local values = 0
      for i, c in ipairs(row.cells) do
        pandoc.walk_block(pandoc.Div(c.contents), { Span = function(sp)
          if sp.classes:includes('r-value') then
            values = values + 1
            t.colspecs[i] = { pandoc.AlignRight }
          end
        end })
      end
      if values > 0 then kept:insert(row) end
    end
    body.body = kept
  end
  local cap = pandoc.List()
  local long = t.caption.long or {}
  if #long > 0 and first then
    cap:extend(long[1].content)
    cap:insert(pandoc.Space())
  end
  cap:extend(measured_on(gpu, csv, first, without))
  t.caption.long = { pandoc.Plain(cap) }
  local out = pandoc.List()
  if S.latex then
    local rows = 0
    for _, body in ipairs(t.bodies) do rows = rows + #body.body end
    out:insert(keep_together(rows, #stringify(cap)))
  end
  out:insert(t)
  return out
end

-- A table holding result keys becomes one table per GPU with data, like a results div.
local function key_table(tbl)
  local csv = first_key_csv(tbl)
  if not csv then return nil end
  return pandoc.Div(per_gpu(csv, function(gpu, first, without)
    return key_table_for(tbl, gpu, csv, first, without)
  end), pandoc.Attr('', { 'results', 'key-table' }))
end

------------------------------------------------------------------------
-- Figures: ![caption](stem.svg)
------------------------------------------------------------------------

local function is_local_name(src)
  return not src:match('^%a[%w+.-]*:') and not src:match('/')
end

-- CSV a figure plots: attribute csv=, else the declaration passed by make
-- (metadata figures="stem:csv ..."), else the stem without its last -part.
local function figure_csv(img)
  if img.attributes.csv then return img.attributes.csv end
  local stem = img.src:match('([^/]+)$'):gsub('%.%w+$', '')
  return S.figcsv[stem] or stem:gsub('%-[^-]*$', '')
end

local function rewrite_src(img)
  if not is_local_name(img.src) then return img end
  local src = img.src
  if S.latex then src = src:gsub('%.svg$', '.pdf') end
  img.src = S.figure_dir .. '/' .. src
  return img
end

-- A paragraph holding only an image with a caption is a figure.
local function figure_para(para)
  if #para.content ~= 1 or para.content[1].t ~= 'Image' then return nil end
  local img = para.content[1]
  if #img.caption == 0 or not is_local_name(img.src) then return nil end
  local csv = figure_csv(img)
  if csv == '-' then  -- a diagram: drawn from no measurement, so no GPU and no date
    para.content[1] = rewrite_src(img)
    return pandoc.Div({ para }, pandoc.Attr('', { 'diagram' }))
  end
  local with, without = gpus_with(csv)
  local notes = pandoc.List()
  local cap = pandoc.List(img.caption)
  if #with == 0 then
    notes:insert(no_data_note())
  else
    local parts = {}
    for _, g in ipairs(with) do
      parts[#parts + 1] = gpu_name(g, csv) .. ' (' .. gpu_date(g, csv) .. ')'
      local note = stale_note(g, csv)
      if note then notes:insert(note) end
    end
    local text = 'Measured on ' .. table.concat(parts, ', ', 1, #parts - 1) ..
      (#parts > 1 and ' and ' or '') .. parts[#parts] ..
      (#parts > 1 and '; the key above the plot tells them apart.' or '.')
    if #without > 0 then text = text .. ' ' .. no_data_for(without) end
    cap:extend({ pandoc.Str('.'), pandoc.Space(),
      pandoc.Span({ pandoc.Str(text) }, pandoc.Attr('', { 'provenance' })) })
  end
  img.caption = cap
  para.content[1] = rewrite_src(img)
  notes:insert(para)
  return pandoc.Div(notes, pandoc.Attr('', { 'results-figure' }, { { 'data-csv', csv } }))
end

------------------------------------------------------------------------
-- SASS excerpts: ```{.sass program=P kernel=K match=PATTERN}``` (an empty block)
------------------------------------------------------------------------

-- Lines of the SASS excerpt shown when the block gives no lines=.
local SASS_LINES = 8

-- Where the n-th sass block (or block of class `class`) of a chapter starts:
-- "chapters/x.md:LINE" (the chapter alone where its file cannot be read).  Fenced blocks of
-- other kinds are skipped whole, so a fence shown inside one is not counted.
local function sass_location(chapter, n, class)
  class = class or 'sass'
  local text = read_file(chapter)
  if not text then return chapter end
  local k, lineno, fence = 0, 0, nil
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    lineno = lineno + 1
    if fence then
      local close = line:match('^%s*([`~]+)%s*$')
      if close and close:sub(1, 1) == fence:sub(1, 1) and #close >= #fence then fence = nil end
    else
      local open, rest = line:match('^%s*(```+)(.*)$')
      if not open then open, rest = line:match('^%s*(~~~+)(.*)$') end
      if open then
        fence = open
        if rest:match('^%s*{[^}]*%.' .. class .. '[%s}]') then
          k = k + 1
          if k == n then return chapter .. ':' .. lineno end
        end
      end
    end
  end
  return chapter
end

-- name(args) or void name<T>(args) as printed by c++filt -> name or name<T>
local function kernel_label(demangled)
  local s = demangled:gsub('^void%s+', '')
  local angle = 0
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == '<' then angle = angle + 1
    elseif c == '>' then angle = angle - 1
    elseif c == '(' and angle == 0 and i > 1 then return s:sub(1, i - 1) end
  end
  return s
end

-- The last identifier before the template arguments or parameters: reduce_v8
local function base_name(label)
  return label:gsub('<.*$', ''):match('([%w_]+)$') or label
end

-- `cuobjdump FLAG bin-dir/PROGRAM`: its output, or nil and the reason (the program not
-- built, cuobjdump not found, cuobjdump failing).
local function run_cuobjdump(program, flag)
  local path = S.bin_dir .. '/' .. program
  local exists = io.open(path, 'rb')
  if exists then exists:close() end
  local tool = S.cuobjdump
  local tool_found = tool:find('/') and io.open(tool, 'rb')
  if tool_found then tool_found:close()
  elseif not tool:find('/') then
    tool_found = pcall(pandoc.pipe, 'sh', { '-c', 'command -v "$0" >/dev/null', tool }, '')
  end
  if not exists then
    return nil, path .. ' is not built: run `make programs` (or `make ' .. path .. '`)'
  elseif not tool_found then
    return nil, "cuobjdump not found ('" .. tool .. "'): `make book-deps` installs it into build/tools " ..
      'from PyPI (pip packages nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm), or put the ' ..
      "CUDA toolkit's cuobjdump on PATH, or pass -M cuobjdump=PATH"
  end
  local ok, out = pcall(pandoc.pipe, 'sh', { '-c', '"$0" ' .. flag .. ' "$1" 2>&1', tool, path }, '')
  if not ok then
    local msg = type(out) == 'table' and (out.output or '') or tostring(out)
    return nil, tool .. ' ' .. flag .. ' ' .. path .. ' failed: ' ..
      (msg:gsub('%s+$', ''):match('[^\n]*$') or msg)
  end
  return out
end

-- Sets name (demangled, else mangled) and label (kernel_label) of each function
-- { mangled, ... }: all in one call where c++filt is found.
local function demangle(funcs)
  local names = {}
  for i, fn in ipairs(funcs) do names[i] = fn.mangled end
  local okf, dem = pcall(pandoc.pipe, S.cxxfilt, {}, table.concat(names, '\n') .. '\n')
  local lines = {}
  if okf then for l in dem:gmatch('[^\n]+') do lines[#lines + 1] = l end end
  for i, fn in ipairs(funcs) do
    fn.name = (#lines == #funcs and lines[i]) or fn.mangled
    fn.label = kernel_label(fn.name)
  end
end

-- `cuobjdump -sass` of one program, parsed once per run: a list of functions
-- { mangled, name (demangled, else mangled), label, arch, instrs = { text... } },
-- in cuobjdump's order, or nil and the reason.
local function sass_functions(program)
  S.sass = S.sass or {}
  local cached = S.sass[program]
  if cached then return cached.funcs, cached.err end
  local funcs, err = nil, nil
  local out
  out, err = run_cuobjdump(program, '-sass')
  if out then
    funcs = {}
    local arch, f = nil, nil
    for line in out:gmatch('[^\n]+') do
      local a = line:match('^%s*code for (sm_%w+)') or line:match('^arch = (sm_%w+)')
      local name = line:match('^%s*Function : (%S+)')
      local instr = line:match('^%s*/%*%x+%*/%s+(.-)%s*;')
      if a then arch = a
      elseif name then
        f = { mangled = name, arch = arch or '?', instrs = {} }
        funcs[#funcs + 1] = f
      elseif instr and f and not instr:match('^NOP$') then
        f.instrs[#f.instrs + 1] = instr
      end
    end
    demangle(funcs)
    if #funcs == 0 then
      funcs, err = nil, S.cuobjdump .. ' -sass ' .. S.bin_dir .. '/' .. program .. ' shows no functions'
    end
  end
  S.sass[program] = { funcs = funcs, err = err }
  return funcs, err
end

-- The pattern as the caption shows it: %. %[ ... (escaped punctuation) read plainly.
local function plain_pattern(p)
  return (p:gsub('%%(%p)', '%1'))
end

-- A caption line above an excerpt: HTML div.sass-caption, LaTeX \chunkcaption.
local function sass_caption(inlines)
  if S.latex then
    local inl = pandoc.List({ pandoc.RawInline('latex', '\\chunkcaption{') })
    inl:extend(inlines)
    inl:insert(pandoc.RawInline('latex', '}'))
    return pandoc.Plain(inl)
  end
  return pandoc.Div({ pandoc.Plain(inlines) }, pandoc.Attr('', { 'sass-caption' }))
end

-- Of FUNCS (the functions of PROGRAM read by cuobjdump), those of architecture ARCH (sm_90
-- takes sm_90a too) whose mangled name holds KERNEL (those named exactly KERNEL where there
-- are any: v1 is not v10), narrowed to those whose name holds INSTANCE: a list, or nil and
-- the reason. The sass and resources blocks and the res: keys all pick functions so.
local function select_functions(funcs, program, kernel, instance, arch)
  local cands = {}
  for _, f in ipairs(funcs) do
    if f.arch:sub(1, #arch) == arch and f.mangled:find(kernel, 1, true) then cands[#cands + 1] = f end
  end
  if #cands == 0 then
    return nil, 'no function of ' .. S.bin_dir .. '/' .. program .. ' (' .. arch .. ') has ' ..
      kernel .. ' in its name'
  end
  local exact = {}
  for _, f in ipairs(cands) do
    if base_name(f.label) == kernel then exact[#exact + 1] = f end
  end
  if #exact > 0 then cands = exact end
  if instance and instance ~= '' then
    local picked = {}
    for _, f in ipairs(cands) do
      if f.name:find(instance, 1, true) or f.mangled:find(instance, 1, true) then picked[#picked + 1] = f end
    end
    if #picked == 0 then
      local names = {}
      for _, f in ipairs(cands) do names[#names + 1] = f.label end
      return nil, "instance='" .. instance .. "' is in none of " .. table.concat(names, ', ')
    end
    cands = picked
  end
  return cands
end

-- The location of a chapter's next block of CLASS ("chapter.md:LINE: CLASS block"),
-- counted per chapter, with the attributes that name it (NAMES, in order).
local function block_where(class, a, names)
  S.block_n = S.block_n or {}
  local chapter = S.chapter or 'book'
  local key = class .. ' ' .. chapter
  S.block_n[key] = (S.block_n[key] or 0) + 1
  local where = sass_location(chapter, S.block_n[key], class) .. ': ' .. class .. ' block'
  for _, name in ipairs(names) do
    if a[name] then
      where = where .. ' ' .. name .. '=' .. ((name == 'match' or name == 'instance') and ("'" .. a[name] .. "'") or a[name])
    end
  end
  return where
end

-- ```{.sass program=P kernel=K match=PATTERN [instance=S] [arch=sm_90] [lines=N]}```
-- becomes the instructions of kernel K in build/bin/P that PATTERN matches (a Lua
-- pattern on "OPCODE OPERANDS"), at most N of them, under a caption that counts them.
local function sass_block(cb)
  local a = cb.attributes
  local where = block_where('sass', a, { 'program', 'kernel', 'match' })
  local function bad(msg)
    S.errors[#S.errors + 1] = where .. ': ' .. msg
    return pandoc.List({ pandoc.CodeBlock('', pandoc.Attr('', { 'sass-listing' })) })
  end
  if not a.program or not a.kernel or not a.match then
    return bad('needs program=, kernel= and match=')
  end
  local most = tonumber(a.lines or SASS_LINES)
  if not most or most < 1 or most ~= math.floor(most) then
    return bad("lines='" .. a.lines .. "' is not a positive whole number")
  end
  if not pcall(string.find, '', a.match) then
    return bad("match='" .. a.match .. "' is not a Lua pattern")
  end
  local funcs, err = sass_functions(a.program)
  if not funcs then return bad(err) end
  -- the functions of the wanted architecture (sm_90 also takes sm_90a), else the first one's
  local arch = a.arch or funcs[1].arch
  local in_arch = {}
  for _, f in ipairs(funcs) do
    if f.arch:sub(1, #arch) == arch then in_arch[#in_arch + 1] = f end
  end
  if #in_arch == 0 then
    -- built for another GPU (make ARCH=sm_80): the excerpt cannot be shown, which is no error
    local built = {}
    for _, f in ipairs(funcs) do
      if not built[f.arch] then built[f.arch] = true; built[#built + 1] = f.arch end
    end
    io.stderr:write('weave: ' .. where .. ': no ' .. arch .. ' code in ' .. S.bin_dir .. '/' .. a.program .. ' (built for ' ..
      table.concat(built, ', ') .. '): excerpt left out\n')
    return pandoc.List({ note_div('no-data', pandoc.read('This excerpt shows the ' .. arch ..
      ' code of `' .. a.kernel .. '`; the program was built for ' .. table.concat(built, ', ') ..
      ' (`make ARCH=' .. arch .. ' programs` builds it for ' .. arch .. ').', 'markdown').blocks[1].content) })
  end
  local cands, why = select_functions(in_arch, a.program, a.kernel, a.instance, arch)
  if not cands then return bad(why) end
  local f = cands[1]
  local hits = {}
  for _, ins in ipairs(f.instrs) do
    if ins:find(a.match) then hits[#hits + 1] = ins end
  end
  if #hits == 0 then
    return bad('no instruction of ' .. f.label .. ' (' .. f.arch .. ', ' .. #f.instrs ..
      ' instructions) matches')
  end
  local shown = { table.unpack(hits, 1, math.min(most, #hits)) }
  local cap = pandoc.List({ pandoc.Code('cuobjdump -sass ' .. S.bin_dir .. '/' .. a.program), pandoc.Str(':'),
    pandoc.Space(), pandoc.Str(#hits .. ' of ' .. #f.instrs .. ' instructions of'), pandoc.Space(),
    pandoc.Code(f.label), pandoc.Space(), pandoc.Str('(' .. f.arch .. ')'), pandoc.Space(),
    pandoc.Str('match'), pandoc.Space(), pandoc.Code(plain_pattern(a.match)) })
  if #shown < #hits then
    cap:extend({ pandoc.Str(';'), pandoc.Space(), pandoc.Str('the first ' .. #shown .. ' are shown') })
  end
  if #cands > 1 then
    cap:extend({ pandoc.Str(';'), pandoc.Space(),
      pandoc.Str('the first of ' .. #cands .. ' instances of'), pandoc.Space(), pandoc.Code(a.kernel) })
  end
  cap:insert(pandoc.Str('.'))
  local listing = pandoc.CodeBlock(table.concat(shown, '\n'), pandoc.Attr('', { 'sass-listing' }))
  local attr = pandoc.Attr('', { 'sass' }, { { 'data-program', a.program }, { 'data-kernel', f.mangled } })
  if S.latex then
    return pandoc.List({ needspace(math.min(#shown, 4) + 4), sass_caption(cap), listing })
  end
  return pandoc.List({ pandoc.Div({ sass_caption(cap), listing }, attr) })
end

------------------------------------------------------------------------
-- Kernel resources: ```{.resources program=P kernel=K [instance=S] [arch=sm_90]}```
-- and the key [res:P/K/S/FIELD]{.r}
------------------------------------------------------------------------

-- Shared memory the system reserves in every block from sm_80 on: cuobjdump's SHARED
-- counts it (a kernel without __shared__ variables shows 1024 on sm_90).
local RES_RESERVED_SHARED = 1024

-- The fields of a resources key, and the table's columns: { key, header, cuobjdump's name }
local RES_FIELDS = {
  { 'regs', 'Registers', 'REG' }, { 'shared', 'Shared', 'SHARED' },
  { 'local', 'Local', 'LOCAL' }, { 'stack', 'Stack', 'STACK' },
}

-- `cuobjdump -res-usage` of one program, parsed once per run: a list of functions
-- { mangled, name, label, arch, regs, shared (the kernel's own static shared memory),
-- shared_raw (as cuobjdump prints it), local, stack }, each (arch, function) once, in
-- cuobjdump's order, or nil and the reason.
local function res_functions(program)
  S.res = S.res or {}
  local cached = S.res[program]
  if cached then return cached.funcs, cached.err end
  local out, err = run_cuobjdump(program, '-res-usage')
  local funcs
  if out then
    funcs = {}
    local arch, f, seen = nil, nil, {}
    for line in out:gmatch('[^\n]+') do
      local a = line:match('^arch = (sm_%w+)')
      local name = line:match('^%s*Function ([^%s:]+):')
      if a then arch = a
      elseif name then
        f = nil
        local id = (arch or '?') .. ' ' .. name
        if not seen[id] then
          seen[id] = true
          f = { mangled = name, arch = arch or '?' }
          funcs[#funcs + 1] = f
        end
      elseif f and line:match('REG:%d+') then
        f.regs = tonumber(line:match('REG:(%d+)'))
        f.stack = tonumber(line:match('STACK:(%d+)')) or 0
        f.shared_raw = tonumber(line:match('SHARED:(%d+)')) or 0
        f['local'] = tonumber(line:match('LOCAL:(%d+)')) or 0
        local cc = tonumber(f.arch:match('^sm_(%d+)')) or 0
        f.shared = f.shared_raw
        if cc >= 80 and f.shared >= RES_RESERVED_SHARED then f.shared = f.shared - RES_RESERVED_SHARED end
        f = nil
      end
    end
    local kept = {}
    for _, fn in ipairs(funcs) do if fn.regs then kept[#kept + 1] = fn end end
    funcs = kept
    demangle(funcs)
    if #funcs == 0 then
      funcs, err = nil, S.cuobjdump .. ' -res-usage ' .. S.bin_dir .. '/' .. program .. ' shows no functions'
    end
  end
  S.res[program] = { funcs = funcs, err = err }
  return funcs, err
end

-- The functions of PROGRAM that select_functions picks, in architecture ARCH (default: the
-- first function's): a list and the architecture, or nil and the reason.
local function res_select(program, kernel, instance, arch)
  local funcs, err = res_functions(program)
  if not funcs then return nil, err end
  local cands, why = select_functions(funcs, program, kernel, instance, arch or funcs[1].arch)
  if not cands then return nil, why end
  return cands, cands[1].arch
end

-- ```{.resources program=P kernel=K [instance=S] [arch=sm_90]}``` becomes a table of the
-- matching functions of bin-dir/P: registers, static shared memory, local memory, stack.
local function resources_block(cb)
  local a = cb.attributes
  local where = block_where('resources', a, { 'program', 'kernel', 'instance' })
  local function bad(msg)
    S.errors[#S.errors + 1] = where .. ': ' .. msg
    return pandoc.List({ pandoc.Div({}, pandoc.Attr('', { 'resources' })) })
  end
  if not a.program or not a.kernel then return bad('needs program= and kernel=') end
  local funcs, arch = res_select(a.program, a.kernel, a.instance, a.arch)
  if not funcs then return bad(arch) end
  -- instances of one template: the kernel's name heads the column, each row its arguments
  local shared_name = true
  for _, f in ipairs(funcs) do
    if base_name(f.label) ~= a.kernel or not f.label:find('<', 1, true) then shared_name = false end
  end
  local aligns = { pandoc.AlignLeft }
  local headers = { { pandoc.Plain({ shared_name and pandoc.Code(a.kernel) or pandoc.Str('Kernel') }) } }
  for _, fld in ipairs(RES_FIELDS) do
    aligns[#aligns + 1] = pandoc.AlignRight
    headers[#headers + 1] = { pandoc.Plain({ pandoc.Str(fld[2]) }) }
  end
  local rows = {}
  for _, f in ipairs(funcs) do
    local label = shared_name and f.label:sub((f.label:find('<', 1, true))) or f.label
    local row = { { pandoc.Plain({ pandoc.Code(label) }) } }
    for _, fld in ipairs(RES_FIELDS) do row[#row + 1] = { pandoc.Plain({ pandoc.Str(tostring(f[fld[1]])) }) } end
    rows[#rows + 1] = row
  end
  local cap = pandoc.List({ pandoc.Str('Resources'), pandoc.Space(), pandoc.Str('of'), pandoc.Space(),
    pandoc.Str('the'), pandoc.Space(), pandoc.Str('kernels'), pandoc.Space(), pandoc.Str('of'), pandoc.Space(),
    pandoc.Code(a.program), pandoc.Space(), pandoc.Str('matching'), pandoc.Space(), pandoc.Code(a.kernel) })
  if a.instance and a.instance ~= '' then
    cap:extend({ pandoc.Space(), pandoc.Str('and'), pandoc.Space(), pandoc.Code(a.instance) })
  end
  cap:insert(pandoc.Space())
  cap:extend(pandoc.read('(' .. arch .. '), from `cuobjdump -res-usage`: registers a thread; ' ..
    'shared memory a block declared in the kernel, without the 1 KiB the system reserves in ' ..
    'every block that uses shared memory (dynamic shared memory is chosen at launch and not ' ..
    'included); local memory a thread (spills) and stack frame; in bytes.', 'markdown').blocks[1].content)
  local st = pandoc.SimpleTable(cap, aligns, {}, headers, rows)
  for i = 1, #aligns do st.widths[i] = 0 end
  local blocks = pandoc.List()
  if S.latex then blocks:insert(keep_together(#rows, #stringify(cap))) end
  blocks:insert(utils.from_simple_table(st))
  return pandoc.List({ pandoc.Div(blocks, pandoc.Attr('', { 'resources' },
    { { 'data-program', a.program }, { 'data-kernel', a.kernel } })) })
end

-- The line of the chapter where `text` first stands: "chapters/x.md:LINE", else the chapter.
local function text_location(chapter, text)
  local src = read_file(chapter)
  if not src then return chapter end
  local lineno = 0
  for line in (src .. '\n'):gmatch('([^\n]*)\n') do
    lineno = lineno + 1
    if line:find(text, 1, true) then return chapter .. ':' .. lineno end
  end
  return chapter
end

-- [res:PROGRAM/KERNEL/INSTANCE/FIELD]{.r}: FIELD (regs, shared, local or stack) of the one
-- function res_select finds (INSTANCE may be empty): the number as text, or nil and why.
function res_key_value(key)
  local program, kernel, instance, field = key:match('^%s*res:([^/]+)/([^/]+)/([^/]*)/([^/]+)%s*$')
  if not program then
    return nil, 'is not res:PROGRAM/KERNEL/INSTANCE/FIELD (INSTANCE may be empty)'
  end
  local known = false
  for _, fld in ipairs(RES_FIELDS) do if fld[1] == field then known = true end end
  if not known then return nil, "field '" .. field .. "' is none of regs, shared, local, stack" end
  local funcs, why = res_select(program, kernel, instance)
  if not funcs then return nil, why end
  if #funcs > 1 then
    local names = {}
    for _, f in ipairs(funcs) do names[#names + 1] = f.label end
    return nil, 'matches ' .. #funcs .. ' functions (' .. table.concat(names, '; ') ..
      '): an instance substring must narrow it to one'
  end
  return tostring(funcs[1][field])
end

local function res_span(span)
  local key = stringify(span.content)
  local v, why = res_key_value(key)
  if not v and S.other_page then
    -- the contents and GPUs pages quote the chapters' sentences but do not depend on the
    -- programs (their chapters' pages report these errors)
    return pandoc.Span({ pandoc.Str('–') }, pandoc.Attr('', { 'r-none' }, { { 'title', key } }))
  end
  if not v then
    local msg = "resources key '" .. key .. "': " .. why
    local at = text_location(S.chapter or 'book', key)
    S.errors[#S.errors + 1] = at .. ': ' .. msg
    return pandoc.Span({ pandoc.Str('[no data: ' .. key .. ']') },
      pandoc.Attr('', { 'r-missing' }, { { 'title', key } }))
  end
  return pandoc.Span({ pandoc.Str(v) }, pandoc.Attr('', { 'r-value', 'r-res' }, { { 'title', key } }))
end
res_span_impl = res_span

------------------------------------------------------------------------
-- Walking a chapter
------------------------------------------------------------------------

local function is_chunk(cb)
  return cb.attributes.file ~= nil or cb.identifier ~= ''
end

-- Inline filters applied to ordinary blocks (with S.chapter set).
local function resolve_span(s)
  if s.classes:includes('r') then return result_span(s) end
  if s.classes:includes('claim') then return claim_span(s) end
end
local span_filter = { Span = resolve_span }
local image_filter = { Image = rewrite_src }
local block_filter = { Span = resolve_span, Image = rewrite_src }

-- Blocks need a manual walk: chunks and results divs expand to lists, and
-- figures must be seen before their Image is rewritten.
local function weave_blocks(blocks)
  local out = pandoc.List()
  for _, b in ipairs(blocks) do
    if b.t == 'CodeBlock' and is_chunk(b) then
      local r = weave_chunk(b)
      if r.t then out:insert(r) else out:extend(r) end
    elseif b.t == 'CodeBlock' and b.classes:includes('sass') then
      out:extend(sass_block(b))
    elseif b.t == 'CodeBlock' and b.classes:includes('resources') then
      out:extend(resources_block(b))
    elseif b.t == 'Table' and first_key_csv(b) then
      out:insert(key_table(b))
    elseif b.t == 'Div' and b.classes:includes('results') then
      out:insert(results_div(b))
    elseif b.t == 'Div' and b.classes:includes('kernel-resources') then
      out:insert(kernel_resources_div(b))
    elseif b.t == 'Div' or b.t == 'BlockQuote' then
      b.content = weave_blocks(b.content)
      out:insert(b)
    else
      b = pandoc.walk_block(b, span_filter)
      local fig = b.t == 'Para' and figure_para(b)
      out:insert(fig or pandoc.walk_block(b, image_filter))
    end
  end
  return out
end

-- Title of a chapter file: its first `# ` heading, as plain text.
local function chapter_title(path)
  if S.titles[path] == nil then
    local text = read_file(path)
    local title = false
    if text then
      for line in text:gmatch('[^\n]*') do
        local h = line:match('^#%s+(.-)%s*$')
        if h then
          h = h:gsub('%s*{[^}]*}$', '')
          local doc = pandoc.read(h, 'markdown')
          title = doc.blocks[1] and stringify(doc.blocks[1]) or h
          break
        end
      end
    end
    S.titles[path] = title
  end
  return S.titles[path] or nil
end

-- The PDF run holds all chapters; a level-1 heading equal to the next
-- chapter's title starts that chapter.
local function weave_book(blocks)
  local out, k = pandoc.List(), 1
  S.chapter = S.chapters[1]
  -- chapter numbers follow the file names: 00-measuring.md is chapter 0
  local first = S.chapter and tonumber(chapter_stem(S.chapter):match('^(%d+)'))
  if S.latex and first then
    out:insert(pandoc.RawBlock('latex', '\\setcounter{chapter}{' .. (first - 1) .. '}'))
  end
  for _, b in ipairs(blocks) do
    if b.t == 'Header' and b.level == 1 then
      for j = k + 1, #S.chapters do
        if chapter_title(S.chapters[j]) == stringify(b) then
          k, S.chapter, S.seen = j, S.chapters[j], {}
          break
        end
      end
    end
    out:extend(weave_blocks({ b }))
  end
  return out
end

------------------------------------------------------------------------
-- HTML navigation and contents page
------------------------------------------------------------------------

local function set_nav(meta)
  local pos
  for i, c in ipairs(S.chapters) do if c == S.chapter then pos = i end end
  meta['index-href'] = pandoc.MetaString('index.html')
  if not pos then return end
  local prev, nxt = S.chapters[pos - 1], S.chapters[pos + 1]
  if prev then
    meta['prev-href'] = pandoc.MetaString(page_of(prev))
    meta['prev-title'] = pandoc.MetaString(chapter_title(prev) or chapter_stem(prev))
  else
    meta['prev-href'] = pandoc.MetaString('index.html')
    meta['prev-title'] = pandoc.MetaString('Contents')
  end
  if nxt then
    meta['next-href'] = pandoc.MetaString(page_of(nxt))
    meta['next-title'] = pandoc.MetaString(chapter_title(nxt) or chapter_stem(nxt))
  end
  local title = chapter_title(S.chapter)
  if title then meta.pagetitle = pandoc.MetaString(title) end
  meta['chapter-number'] = pandoc.MetaString(tostring(tonumber(chapter_stem(S.chapter):match('^(%d+)')) or ''))
end

-- First sentence of a chapter's first paragraph (or its `summary` field).
local function chapter_summary(path)
  local text = read_file(path)
  if not text then return {} end
  local doc = pandoc.read(text, 'markdown')
  if doc.meta.summary then
    local s = doc.meta.summary
    return s.t == 'MetaBlocks' and s[1].content or s
  end
  for _, b in ipairs(doc.blocks) do
    if b.t == 'Para' then
      local para = pandoc.walk_block(b, block_filter)
      local out = pandoc.List()
      for _, inl in ipairs(para.content) do
        out:insert(inl)
        if inl.t == 'Str' and inl.text:match('[.!?]$') then break end
      end
      -- a paragraph that leads into a formula or a list ends in a colon: a summary ends in a stop
      local last = out[#out]
      if last and last.t == 'Str' and last.text:match(':$') then
        out[#out] = pandoc.Str(last.text:gsub(':$', '.'))
      end
      return out
    end
  end
  return {}
end

local function index_page(doc)
  local entries = pandoc.List()
  for _, c in ipairs(S.chapters) do
    S.chapter = c
    local num = chapter_stem(c):match('^(%d+)') or ''
    local title = chapter_title(c) or chapter_stem(c)
    local csv = chapter_csv(c)
    local data = pandoc.List()
    for _, g in ipairs(gpus_with(csv)) do
      if #data > 0 then data:insert(pandoc.Str(' · ')) end
      data:insert(pandoc.Str(gpu_name(g, csv)))
      if staleness(g, csv) then
        data:insert(pandoc.Span({ pandoc.Str(' (stale)') }, pandoc.Attr('', { 'stale-mark' })))
      end
    end
    if #data == 0 then data = pandoc.List({ pandoc.Str('no measurements yet') }) end
    data:insert(1, pandoc.Str('Measured on: '))
    entries:insert(pandoc.Div({
      pandoc.Para({ pandoc.Span({ pandoc.Str(tostring(tonumber(num) or num)) },
        pandoc.Attr('', { 'toc-num' })), pandoc.Space(),
        pandoc.Link({ pandoc.Str(title) }, page_of(c)) }),
      pandoc.Para(chapter_summary(c)),
      pandoc.Div({ pandoc.Para(data) }, pandoc.Attr('', { 'toc-data' })),
    }, pandoc.Attr('', { 'toc-entry' })))
  end
  S.chapter = nil
  entries:insert(pandoc.Div({
    pandoc.Para({ pandoc.Span({ pandoc.Str('·') }, pandoc.Attr('', { 'toc-num' })), pandoc.Space(),
      pandoc.Link({ pandoc.Str('The GPUs measured') }, 'gpus.html') }),
    pandoc.Para({ pandoc.Str('Every chapter on every GPU with data, side by side, and the sentences of the book ' ..
      'that do not hold on a GPU.') }),
  }, pandoc.Attr('', { 'toc-entry' })))
  local blocks = pandoc.List()
  if doc.meta.description then
    blocks:insert(pandoc.Div({ pandoc.Para(pandoc.List(doc.meta.description[1]
      and doc.meta.description[1].content or doc.meta.description)) },
      pandoc.Attr('', { 'description' })))
  end
  blocks:insert(pandoc.Div(entries, pandoc.Attr('', { 'book-toc' })))
  doc.meta['index-page'] = true
  doc.meta.toc = false
  return pandoc.Pandoc(blocks, doc.meta)
end

------------------------------------------------------------------------
-- The GPUs page: each chapter's best version against the ceiling and the peers on every
-- GPU with data, and the claims of the prose that do not hold on a GPU
------------------------------------------------------------------------

-- "lo–hi" of a list of numbers with a format, or a dash.
local function span_of(xs, fmt)
  if #xs == 0 then return '–' end
  table.sort(xs)
  local lo, hi = string.format(fmt, xs[1]), string.format(fmt, xs[#xs])
  return lo == hi and lo or (lo .. '–' .. hi)
end

-- Whether a version computes a backward pass: ours named b0, b1, ..., peers ending in -bwd
-- (the softmax and upsample chapters); a peer is set against ours of the same direction.
local function backward(version)
  return version:match('^b%d') ~= nil or version:match('%-bwd$') ~= nil
end

-- Per dtype of a chapter's CSV on one GPU: at every size, the fastest of ours (status
-- pass), its % of the ceiling, and each peer's time over the time of the fastest of ours
-- in the same direction.
local function best_summary(gpu, csv)
  local rows = load_csv(gpu, csv) or {}
  local best, peers, dtypes = {}, {}, {}
  for _, r in ipairs(rows) do
    local t = tonumber(r.time_us)
    if t and r.status == 'pass' and (r.kind == 'ours' or r.kind == 'peer') then
      local key = r.dtype .. '/' .. r.size
      if not dtypes[r.dtype] then
        dtypes[r.dtype] = { pct = {}, ratio = {}, peers = {} }
        dtypes[#dtypes + 1] = r.dtype
      end
      if r.kind == 'ours' then
        local dir = key .. (backward(r.version) and '/bwd' or '/fwd')
        if not best[key] or t < best[key].t then best[key] = { t = t, pct = tonumber(r.pct_sol) } end
        if not best[dir] or t < best[dir].t then best[dir] = { t = t } end
      else
        peers[#peers + 1] = { key = key, dtype = r.dtype, v = r.version, t = t }
      end
    end
  end
  for key, b in pairs(best) do
    local d = dtypes[key:match('^[^/]*')]
    if b.pct then table.insert(d.pct, b.pct) end
  end
  for _, p in ipairs(peers) do
    local d, b = dtypes[p.dtype], best[p.key .. (backward(p.v) and '/bwd' or '/fwd')]
    if b then
      if not d.ratio[p.v] then
        d.ratio[p.v] = {}
        d.peers[#d.peers + 1] = p.v
      end
      table.insert(d.ratio[p.v], p.t / b.t)
    end
  end
  return dtypes
end

-- The sentence of a paragraph's text that holds `part` (at most about 240 characters of
-- it, around `part`), or `part`.
local function sentence_around(text, part)
  local at = text:find(part, 1, true)
  if not at then return part end
  local from, to = 1, #text
  for i = at - 1, 2, -1 do
    if text:sub(i - 1, i):match('[.?!]%s') then from = i + 1; break end
  end
  local stop = text:find('[.?!]%s', at + #part)
  if stop then to = stop end
  local pre, post = '', ''
  if at - from > 120 then from, pre = text:find('%s', at - 120) or from, '…' end
  if to - (at + #part) > 120 then to, post = (text:find('%s', at + #part + 120) or to + 1) - 1, '…' end
  return pre .. (text:sub(from, to):gsub('^%s+', '')) .. post
end

-- Text as the book reads it: result keys as their values, 2^20^ as 2^20.
local function reading(el)
  return stringify(pandoc.walk_block(pandoc.Div({ pandoc.Plain(el) }), {
    Superscript = function(e) return pandoc.Str('^' .. stringify(e)) end,
    Span = function(sp) if sp.classes:includes('r') then return result_span(sp) end end,
  }))
end

-- The claims of a chapter, each with the sentence it stands in; read once per run.
local claims_read = {}
local function chapter_claims(path)
  if claims_read[path] then return claims_read[path] end
  local text = read_file(path)
  local found = pandoc.List()
  claims_read[path] = found
  if not text then return found end
  local function claims_of(block)  -- a paragraph, or the plain text of a list item or a table cell
    local whole  -- the block's text, read once it holds a claim
    pandoc.walk_block(block, {
      Span = function(sp)
        if sp.classes:includes('claim') and sp.attributes.expr and sp.attributes['in'] then
          whole = whole or reading(block.content)
          local part = reading(sp.content)
          found:insert({ span = sp, text = part, sentence = sentence_around(whole, part) })
        end
      end,
    })
  end
  pandoc.walk_block(pandoc.Div(pandoc.read(text, 'markdown').blocks), { Para = claims_of, Plain = claims_of })
  return found
end

local function gpus_page(doc)
  local blocks = pandoc.List()
  blocks:insert(pandoc.Header(1, { pandoc.Str('The GPUs measured') }))
  blocks:insert(pandoc.Para(pandoc.read('Each chapter on every GPU with data, the reference first: for each element ' ..
    'type, over the sizes measured, the fastest of the chapter\'s versions as a percentage of the ' ..
    'chapter\'s ceiling, and how many times faster than each peer it is (the peer\'s time over ' ..
    'ours: above 1, ours is faster), at the sizes that peer ran, a backward pass against ours. ' ..
    'After `make bench` on your GPU, ' ..
    'yours is among them. ' ..
    'Then, for each GPU but the reference, the sentences of the book that compare measurements ' ..
    'and do not hold on it, each as the book prints it (with the reference GPU\'s numbers), ' ..
    'and what that GPU measured.', 'markdown').blocks[1].content))
  for _, c in ipairs(S.chapters) do
    S.chapter = c
    local csv = chapter_csv(c)
    local gpus = gpus_with(csv)
    if #gpus > 0 then
      blocks:insert(pandoc.Header(2, { pandoc.Link({ pandoc.Str(chapter_title(c) or chapter_stem(c)) }, page_of(c)) }))
      local head = { cell({ pandoc.Str('type') }), cell({ pandoc.Str('GPU') }),
        cell({ pandoc.Str('% of ceiling') }), cell({ pandoc.Str('× each peer') }) }
      local summaries, dtypes = {}, {}
      for i, g in ipairs(gpus) do
        summaries[i] = best_summary(g, csv)
        for _, d in ipairs(summaries[i]) do
          if not dtypes[d] then dtypes[d] = true; dtypes[#dtypes + 1] = d end
        end
      end
      local body = {}
      for _, d in ipairs(dtypes) do
        for i, g in ipairs(gpus) do
          local x = summaries[i][d]
          local ratios = pandoc.List()
          for _, pv in ipairs(x and x.peers or {}) do
            if #ratios > 0 then ratios:insert(pandoc.LineBreak()) end
            ratios:insert(pandoc.Code(pv))
            ratios:insert(pandoc.Str(' ' .. span_of(x.ratio[pv], '%.2f×')))
          end
          body[#body + 1] = { cell({ pandoc.Str(i == 1 and d or '') }),
            cell({ pandoc.Str(gpu_name(g, csv) .. (staleness(g, csv) and ' (stale)' or '')) }),
            cell({ pandoc.Str(x and span_of(x.pct, '%.0f%%') or '–') }),
            cell(#ratios > 0 and ratios or { pandoc.Str('–') }) }
        end
      end
      local aligns = { pandoc.AlignLeft, pandoc.AlignLeft, pandoc.AlignRight, pandoc.AlignLeft }
      local widths = { 0, 0, 0, 0 }
      blocks:insert(pandoc.utils.from_simple_table(pandoc.SimpleTable({}, aligns, widths, head, body)))
    end
  end
  for k, g in ipairs(S.gpus) do
    if k > 1 or g ~= S.ref_gpu then
      local items, total = pandoc.List(), 0
      for _, c in ipairs(S.chapters) do
        S.chapter = c
        for _, found in ipairs(chapter_claims(c)) do
          local sp = found.span
          local lo, hi = claim_range(sp.attributes['in'])
          local csv = sp.attributes.expr:match('^%s*([^/]+)/')
          if (lo or hi) and csv and load_csv(g, csv) then
            local misses, values = claim_misses(sp.attributes.expr, sp.attributes.over, lo, hi, g)
            if values > 0 then total = total + 1 end
            if #misses > 0 then
              local text = pandoc.List({ pandoc.Link({ pandoc.Str(chapter_title(c) or chapter_stem(c)) }, page_of(c)),
                pandoc.Str(': “' .. found.sentence .. '” (“' .. found.text .. '”): measured ' ..
                  table.concat(misses, ', ') .. '; the claim asks for ' .. sp.attributes['in']) })
              items:insert({ pandoc.Plain(text) })
            end
          end
        end
      end
      blocks:insert(pandoc.Header(2, { pandoc.Str('Claims on the ' .. gpu_name(g)) }))
      blocks:insert(pandoc.Para({ pandoc.Str(string.format('%d of the %d claims with data on this GPU do not hold on it%s',
        #items, total, #items > 0 and ':' or '.')) }))
      if #items > 0 then blocks:insert(pandoc.BulletList(items)) end
    end
  end
  S.chapter = nil
  doc.meta.pagetitle = pandoc.MetaString('The GPUs measured')
  doc.meta['index-href'] = pandoc.MetaString('index.html')
  doc.meta['prev-href'] = pandoc.MetaString('index.html')
  doc.meta['prev-title'] = pandoc.MetaString('Contents')
  return pandoc.Pandoc(blocks, doc.meta)
end

------------------------------------------------------------------------
-- Entry point
------------------------------------------------------------------------

local function setup(meta)
  S.data_dir = meta_str(meta, 'data-dir', 'figures/data')
  S.ref_gpu = meta_str(meta, 'ref-gpu', 'nvidia-h100-80gb-hbm3')
  S.figure_dir = meta_str(meta, 'figure-dir', S.latex and 'build/figures' or 'figures')
  S.chapter = meta_str(meta, 'chapter', nil)
  S.chapters = words(meta_str(meta, 'chapters', ''))
  table.sort(S.chapters)
  S.lenient = meta_str(meta, 'allow-missing-data', 'false') == 'true'
  S.bin_dir = meta_str(meta, 'bin-dir', 'build/bin')
  S.cuobjdump = meta_str(meta, 'cuobjdump', 'cuobjdump')
  S.cxxfilt = meta_str(meta, 'cxxfilt', 'c++filt')
  S.figcsv = {}
  for _, w in ipairs(words(meta_str(meta, 'figures', ''))) do
    local stem, csv = w:match('^(.-):(.*)$')
    if stem then S.figcsv[stem] = csv end
  end
  S.gpus = words(meta_str(meta, 'gpus', ''))
  if #S.gpus == 0 then
    local p = io.popen('ls "' .. S.data_dir .. '" 2>/dev/null')
    if p then
      for l in p:lines() do S.gpus[#S.gpus + 1] = l end
      p:close()
    end
  end
  -- the reference first, then the others by slug
  table.sort(S.gpus, function(a, b)
    if (a == S.ref_gpu) ~= (b == S.ref_gpu) then return a == S.ref_gpu end
    return a < b
  end)
end

local function finish()
  if #S.errors > 0 then
    for _, e in ipairs(S.errors) do io.stderr:write(e .. '\n') end
    error(string.format('weave: %d error(s)', #S.errors))
  end
end

-- The title page's last lines (PDF and contents page), as `date`: the GPUs measured, the
-- reference first, and the version built (book-version: "DATE, commit HASH").
local function set_title_lines(meta)
  local names = {}
  for _, g in ipairs(S.gpus) do names[#names + 1] = gpu_name(g) end
  local lines = pandoc.List()
  if #names > 0 then
    lines:insert(pandoc.Str('Measured on the ' .. names[1] ..
      (S.gpus[1] == S.ref_gpu and ' (the reference GPU)' or '') ..
      (#names > 1 and (' and the ' .. table.concat(names, ', the ', 2)) or '')))
  end
  local version = meta_str(meta, 'book-version', nil)
  if version then
    if #lines > 0 then lines:insert(pandoc.LineBreak()) end
    lines:insert(pandoc.Str('Version of ' .. version))
  end
  if #lines > 0 then meta.date = pandoc.MetaInlines(lines) end
end

function Pandoc(doc)
  setup(doc.meta)
  set_title_lines(doc.meta)
  if doc.meta['index-page'] and stringify(doc.meta['index-page']) ~= 'false' then
    S.other_page = true
    local out = index_page(doc)
    finish()
    return out
  end
  if doc.meta['gpus-page'] and stringify(doc.meta['gpus-page']) ~= 'false' then
    S.other_page = true
    local out = gpus_page(doc)
    finish()
    return out
  end
  local index_path = meta_str(doc.meta, 'chunk-index', nil)
  S.index = load_index(index_path)
  if not S.index then
    if index_path then warn('cannot read chunk index ' .. index_path .. '; using this document only') end
    S.index = local_index(doc.blocks)
  end
  if S.chapter then
    doc.blocks = weave_blocks(doc.blocks)
    if not S.latex then set_nav(doc.meta) end
  else
    doc.blocks = weave_book(doc.blocks)
  end
  finish()
  return doc
end
