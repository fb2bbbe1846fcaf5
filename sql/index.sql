-- synthivf: the index access method for embeddings (IVF lists, 8-bit residual codes, exact rerank).
--   CREATE INDEX ON items USING synthivf (emb embedding_l2_ops) WITH (lists = 1000);
-- serves ORDER BY emb <-> $1 LIMIT k (and <=>, <#> with their operator classes).

CREATE FUNCTION synthivf_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE ACCESS METHOD synthivf TYPE INDEX HANDLER synthivf_handler;
COMMENT ON ACCESS METHOD synthivf IS 'IVF index for embeddings: ORDER BY distance LIMIT k';

-- Support function 1 of each operator class names its metric. For a query type other than
-- embedding (synthquery), function 2 turns a query into its embedding and function 3 gives the
-- encoder version it came from, which must match the index's.
CREATE FUNCTION synthivf_metric_l2(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synthivf_metric_cosine(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synthivf_metric_ip(internal) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS embedding_l2_ops
    DEFAULT FOR TYPE embedding USING synthivf AS
    OPERATOR 1 <-> (embedding, embedding) FOR ORDER BY float_ops,
    FUNCTION 1 synthivf_metric_l2(internal);

CREATE OPERATOR CLASS embedding_cosine_ops
    FOR TYPE embedding USING synthivf AS
    OPERATOR 1 <=> (embedding, embedding) FOR ORDER BY float_ops,
    FUNCTION 1 synthivf_metric_cosine(internal);

CREATE OPERATOR CLASS embedding_ip_ops
    FOR TYPE embedding USING synthivf AS
    OPERATOR 1 <#> (embedding, embedding) FOR ORDER BY float_ops,
    FUNCTION 1 synthivf_metric_ip(internal);

-- An amcheck-style verification: raises XX002 on the first inconsistency, else returns counts.
-- By default it reads the index alone under an AccessShareLock (readers and writers go on). With
-- heap => true the table is read too (under a ShareLock, which blocks writers meanwhile; the
-- caller needs SELECT on it) and the index must hold exactly its rows; rows deleted but not yet
-- vacuumed are still indexed, so VACUUM first. Like amcheck's functions it is not for PUBLIC:
-- a DBA grants EXECUTE to whoever may check indexes.
CREATE FUNCTION synth_index_check(
    index regclass, heap boolean DEFAULT false,
    OUT pages integer, OUT lists integer, OUT live_rows bigint, OUT dead_vectors bigint,
    OUT orphan_pages integer, OUT orphan_vectors bigint, OUT heap_rows bigint)
    RETURNS record AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION synth_index_check(regclass, boolean) FROM PUBLIC;

-- synth_index_stats: the lists' counts (meta page and directory only, under an AccessShareLock)
-- and whether they have gone stale (trained on fewer than 4 rows a list, the index holds more
-- than twice the rows they were trained on, or one list holds more than 10 times its share),
-- with the advice to REINDEX. For roles that may read the table (or pg_stat_scan_tables), as pgstattuple.
CREATE FUNCTION synth_index_stats(
    index regclass,
    OUT lists integer, OUT build_rows bigint, OUT live_rows bigint, OUT dead_rows bigint,
    OUT largest_list bigint, OUT empty_lists integer, OUT stale boolean, OUT advice text)
    RETURNS record AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
