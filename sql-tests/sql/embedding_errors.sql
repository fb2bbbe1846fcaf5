-- Each bad input is an ERROR with a fitting SQLSTATE; this helper shows both.
CREATE FUNCTION sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- malformed text: 22P02
SELECT sqlstate_of($$SELECT '1,2'::embedding$$);
SELECT sqlstate_of($$SELECT '[1,2'::embedding$$);
SELECT sqlstate_of($$SELECT '[1,,2]'::embedding$$);
SELECT sqlstate_of($$SELECT '[1,2,]'::embedding$$);
SELECT sqlstate_of($$SELECT '[a,b]'::embedding$$);
SELECT sqlstate_of($$SELECT '[1 2]'::embedding$$);
SELECT sqlstate_of($$SELECT ''::embedding$$);
-- no dimensions, NaN, infinity: 22000
SELECT sqlstate_of($$SELECT '[]'::embedding$$);
SELECT sqlstate_of($$SELECT '[NaN]'::embedding$$);
SELECT sqlstate_of($$SELECT '[1,Infinity]'::embedding$$);
SELECT sqlstate_of($$SELECT '[-inf]'::embedding$$);
-- overflow of float4: 22003
SELECT sqlstate_of($$SELECT '[1e39]'::embedding$$);
SELECT sqlstate_of($$SELECT '{1e300}'::double precision[]::embedding$$);
SELECT sqlstate_of($$SELECT '{1e39}'::numeric[]::embedding$$);
-- too many dimensions: 54000
SELECT sqlstate_of($$SELECT array_fill(1, ARRAY[16001])::embedding$$);
SELECT sqlstate_of(format('SELECT %L::embedding', '[' || repeat('1,', 16000) || '1]'));
-- typmod out of range: 22023
SELECT sqlstate_of($$SELECT '[1]'::embedding(0)$$);
SELECT sqlstate_of($$SELECT '[1]'::embedding(16001)$$);
SELECT sqlstate_of($$CREATE TABLE t (e embedding(3, 2))$$);
-- a value that breaks the typmod: 22000
CREATE TABLE typed (e embedding(3));
SELECT sqlstate_of($$INSERT INTO typed VALUES ('[1,2]')$$);
SELECT sqlstate_of($$SELECT '[1,2]'::embedding::embedding(3)$$);
SELECT sqlstate_of($$INSERT INTO typed VALUES (ARRAY[1,2,3,4])$$);
-- arrays that are no embedding
SELECT sqlstate_of($$SELECT '{1,NULL}'::real[]::embedding$$);
SELECT sqlstate_of($$SELECT '{{1,2},{3,4}}'::real[]::embedding$$);
SELECT sqlstate_of($$SELECT '{}'::real[]::embedding$$);
SELECT sqlstate_of($$SELECT '{NaN}'::real[]::embedding$$);
-- operands of different dimensions: 22000
SELECT sqlstate_of($$SELECT '[1,2]'::embedding <-> '[1,2,3]'$$);
SELECT sqlstate_of($$SELECT '[1,2]'::embedding <=> '[1,2,3]'$$);
SELECT sqlstate_of($$SELECT '[1,2]'::embedding <#> '[1,2,3]'$$);
SELECT sqlstate_of($$SELECT '[1,2]'::embedding + '[1,2,3]'$$);
SELECT sqlstate_of($$SELECT avg(e) FROM (VALUES ('[1,2]'::embedding), ('[1]')) v(e)$$);
-- arithmetic overflow: 22003
SELECT sqlstate_of($$SELECT '[3e38]'::embedding + '[3e38]'$$);
-- settings are checked
SELECT sqlstate_of($$SET synthsearch.threads = 0$$);
SELECT sqlstate_of($$SET synthsearch.device = 'tpu'$$);
SELECT sqlstate_of($$SET synthsearch.no_such_setting = 1$$);
