-- The demo pages' shared pieces, included by scripts/demo_queries.sql and
-- scripts/demo_photos_queries.sql: text escaped for HTML (a catalog's values are not markup), an
-- image as an inline PNG, and the pages' style.
CREATE FUNCTION pg_temp.h(t anyelement) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT replace(replace(replace(replace(replace(coalesce(t::text, ''), '&', '&amp;'), '<', '&lt;'),
                   '>', '&gt;'), '"', '&quot;'), '''', '&#39;') $$;
CREATE FUNCTION pg_temp.img(b bytea, title text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN b IS NULL THEN '<div class="none">none</div>'
           ELSE format('<img src="data:image/png;base64,%s" title="%s">',
                       translate(encode(b, 'base64'), E'\n', ''), pg_temp.h(title)) END $$;
CREATE FUNCTION pg_temp.style() RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'body{font-family:sans-serif;margin:2em;background:#fafafa}section{margin-bottom:2em}'
        || 'img{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc;background:#fff}'
        || '.row{display:flex;gap:8px;align-items:flex-start}.hit{text-align:center;font-size:11px;width:100px}'
        || '.none{width:96px;height:96px;border:1px dashed #ccc;display:flex;align-items:center;justify-content:center;color:#999}'
        || '.q{display:flex;gap:24px;align-items:center;margin:.5em 0}.yes img{border:3px solid #2a2}'
        || '.no img{border:3px solid #d33}' $$;
