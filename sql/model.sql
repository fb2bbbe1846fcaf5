-- Models in the database: a registry of versioned models (weights in parts), one of them active.
-- The encoder's version is kept apart from the generator's: stored embeddings and indexes depend on
-- the encoder only, so a retrained GAN can be activated without invalidating them.

CREATE TABLE synth_models (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL CHECK (name <> ''),
    version           integer NOT NULL CHECK (version > 0),
    encoder_version   text NOT NULL,
    generator_version text NOT NULL,
    image_size        integer NOT NULL,
    dims              integer NOT NULL,
    config            jsonb NOT NULL,
    metrics           jsonb NOT NULL DEFAULT '{}',
    size_bytes        bigint NOT NULL,
    active            boolean NOT NULL DEFAULT false,
    job               bigint,
    created_by        name NOT NULL DEFAULT current_user,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);
CREATE UNIQUE INDEX synth_models_one_active ON synth_models (active) WHERE active;

-- Weights as checkpoint bytes, cut into parts so no single value nears the 1 GB varlena limit.
CREATE TABLE synth_model_parts (
    model bigint NOT NULL REFERENCES synth_models ON DELETE CASCADE,
    part  integer NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (model, part)
);

-- pg_dump carries the registry with the data.
SELECT pg_catalog.pg_extension_config_dump('synth_models', '');
SELECT pg_catalog.pg_extension_config_dump('synth_models_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('synth_model_parts', '');

-- Everyone may read the registry; changes go through the functions below, which check privileges.
REVOKE ALL ON synth_models, synth_model_parts FROM PUBLIC;
GRANT SELECT ON synth_models TO PUBLIC;

-- Model managers (activate, import, export, drop, create models, and train a model that replaces
-- the active one) are superusers, members of the extension's owner, and members of this role,
-- which a DBA grants: GRANT synthsearch_admin TO alice. Roles belong to the cluster, so the role
-- may exist already (the extension in another database); it is never dropped with the extension.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                   WHERE rolname OPERATOR(pg_catalog.=) 'synthsearch_admin'::pg_catalog.name) THEN
        CREATE ROLE synthsearch_admin NOLOGIN;
    END IF;
END
$$;

-- The synthquery type: a search request carrying its synthesized embedding (see src/model/query.rs).
CREATE TYPE synthquery;
CREATE FUNCTION synthquery_in(cstring, oid, integer) RETURNS synthquery
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synthquery_out(synthquery) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synthquery_recv(internal, oid, integer) RETURNS synthquery
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synthquery_send(synthquery) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE synthquery (
    INPUT = synthquery_in, OUTPUT = synthquery_out, RECEIVE = synthquery_recv, SEND = synthquery_send,
    INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = extended
);

CREATE FUNCTION synth_query_text(synthquery) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_query_embedding(synthquery) RETURNS embedding
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_query_model(synthquery) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Distance between a product and the synthesized query.
CREATE FUNCTION synth_query_distance(embedding, synthquery) RETURNS double precision
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OPERATOR <-> (LEFTARG = embedding, RIGHTARG = synthquery, FUNCTION = synth_query_distance);

-- Volatility. synth_encode is IMMUTABLE so that an expression index on synth_encode(img) can
-- exist: within one encoder version the same image always gives the same embedding, and the
-- encoder version cannot change under stored data, because synth_model_activate refuses a model
-- whose encoder differs from the active one's (unless forced after re-encoding) and an index
-- remembers its encoder version. synth_query and synth_generate depend on the active generator,
-- which retraining may replace, so they are STABLE.
CREATE FUNCTION synth_encode(image bytea) RETURNS embedding
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- With a model named, the name may resolve to another encoder tomorrow (a newer version of
-- the name, a dropped and re-made version): that overload is STABLE and cannot be indexed.
CREATE FUNCTION synth_encode(image bytea, model text) RETURNS embedding
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
-- Many images in one call: one forward pass per synthsearch.server_max_batch images (and, with
-- the model server, one round trip), for set-based encoding; NULL images give NULL embeddings.
CREATE FUNCTION synth_encode_batch(images bytea[]) RETURNS embedding[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_encode_batch(images bytea[], model text) RETURNS embedding[]
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_query(reference bytea, wish text) RETURNS synthquery
    AS 'MODULE_PATHNAME', 'synth_query_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_query(reference bytea, wish text, model text) RETURNS synthquery
    AS 'MODULE_PATHNAME', 'synth_query_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_query(reference embedding, wish text) RETURNS synthquery
    AS 'MODULE_PATHNAME', 'synth_query_emb' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_query(reference embedding, wish text, model text) RETURNS synthquery
    AS 'MODULE_PATHNAME', 'synth_query_emb' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_generate(reference bytea, wish text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_generate_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_generate(reference bytea, wish text, model text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_generate_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_generate(reference embedding, wish text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_generate_emb' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_generate(reference embedding, wish text, model text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_generate_emb' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_generate(wish text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_generate_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_generate(wish text, model text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_generate_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Walking between two queries: the images the generator makes at evenly spaced points on the
-- line between two queries' conditions (same noise), from the first query's image to the
-- second's. Between two wishes on one reference, between two text-only wishes, or between two
-- references under one wish. synth_walk_images does the work (NULL when a reference, wish or
-- points is NULL, as a STRICT function would); synth_walk returns each point's image with its
-- position (0 to 1), synth_walk_strip one PNG of them side by side.
CREATE FUNCTION synth_walk_images(from_reference bytea, to_reference bytea, from_wish text, to_wish text, points integer, model text)
    RETURNS bytea[] AS 'MODULE_PATHNAME', 'synth_walk_images_bytea' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION synth_walk_images(from_reference embedding, to_reference embedding, from_wish text, to_wish text, points integer, model text)
    RETURNS bytea[] AS 'MODULE_PATHNAME', 'synth_walk_images_emb' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION synth_walk_images(from_wish text, to_wish text, points integer, model text)
    RETURNS bytea[] AS 'MODULE_PATHNAME', 'synth_walk_images_text' LANGUAGE C STABLE PARALLEL SAFE;
-- Images (PNG, JPEG or WebP) side by side in one PNG.
CREATE FUNCTION synth_image_strip(images bytea[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_image_strip' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION synth_walk(reference bytea, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(reference embedding, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(from_wish, to_wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(from_reference bytea, to_reference bytea, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(from_reference embedding, to_reference embedding, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk_strip(reference bytea, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model));
CREATE FUNCTION synth_walk_strip(reference embedding, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model));
CREATE FUNCTION synth_walk_strip(from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(from_wish, to_wish, points, model));
CREATE FUNCTION synth_walk_strip(from_reference bytea, to_reference bytea, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model));
CREATE FUNCTION synth_walk_strip(from_reference embedding, to_reference embedding, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model));

-- LANGUAGE sql wrappers that the planner inlines into `product <-> q` and `synth_encode(image) <-> q`,
-- so an index on the column or on synth_encode(img) serves ORDER BY synth_distance(...) LIMIT k.
-- (No synth_distance(embedding, embedding): it would make the bare-literal form ambiguous.)
CREATE FUNCTION synth_distance(product embedding, q synthquery) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN product OPERATOR(@extschema@.<->) q;
CREATE FUNCTION synth_distance(image bytea, q synthquery) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN @extschema@.synth_encode(image) OPERATOR(@extschema@.<->) q;

-- An index on product embeddings that serves ORDER BY emb <-> synthquery: the query's embedding
-- comes from support function 2, and the index refuses a query from another encoder version than
-- the one it was built with (support function 3).
CREATE FUNCTION synth_query_encoder(synthquery) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OPERATOR CLASS embedding_synth_ops
    FOR TYPE embedding USING synthivf AS
    OPERATOR 1 <-> (embedding, synthquery) FOR ORDER BY float_ops,
    FUNCTION 1 synthivf_metric_l2(internal),
    FUNCTION 2 synth_query_embedding(synthquery),
    FUNCTION 3 synth_query_encoder(synthquery);

-- Scaling out with Citus. synth_distribute_models(force): on a Citus coordinator, copies to every
-- worker node each model of this registry that the node lacks (same name, encoder and generator
-- versions), then makes the coordinator's active model the active one on every node, so that
-- what runs on the shards finds it: an expression index on synth_encode(img) and the encoder
-- check of a synthivf build. Queries need no model there (the synthquery reaches the shards as a
-- constant). Run it after training or activating a model and before moving shards to a new node.
-- With force, a node's activation skips its encoder check (as synth_model_activate(id, true)).
-- One row per node and model: 'copied' (with the node's model id), 'present', 'activated'.
CREATE FUNCTION synth_distribute_models(force boolean DEFAULT false)
    RETURNS TABLE (node text, port integer, model text, action text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    m record;
    r record;
    cmd text;
    ext text := (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                 JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
                 WHERE e.extname OPERATOR(pg_catalog.=) 'synthsearch');
    same text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'synth_distribute_models needs the citus extension in this database'
            USING ERRCODE = '55000';
    END IF;
    FOR m IN SELECT id, name, version, encoder_version, generator_version, active
             FROM @extschema@.synth_models ORDER BY id LOOP
        same := pg_catalog.format(
            'name OPERATOR(pg_catalog.=) %L AND encoder_version OPERATOR(pg_catalog.=) %L AND generator_version OPERATOR(pg_catalog.=) %L',
            m.name, m.encoder_version, m.generator_version);
        cmd := pg_catalog.format(
            'SELECT CASE WHEN EXISTS (SELECT 1 FROM %1$s.synth_models WHERE %2$s) THEN ''present'' '
            'ELSE ''copied as model '' OPERATOR(pg_catalog.||) %1$s.synth_model_import(pg_catalog.decode(%3$L, ''base64''), %4$L)::text END',
            ext, same, pg_catalog.encode(@extschema@.synth_model_export(m.id::text), 'base64'), m.name);
        FOR r IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1)' USING cmd LOOP
            IF NOT r.success THEN
                RAISE EXCEPTION 'copying model % (% version %) to %:% failed: %', m.id, m.name, m.version, r.nodename, r.nodeport, r.result
                    USING ERRCODE = '58000';
            END IF;
            node := r.nodename; port := r.nodeport; model := m.name || ' version ' || m.version; action := r.result;
            RETURN NEXT;
        END LOOP;
        IF m.active THEN
            cmd := pg_catalog.format(
                'SELECT pg_catalog.count(%1$s.synth_model_activate(id, %3$L)) FROM (SELECT id FROM %1$s.synth_models '
                'WHERE %2$s AND NOT active ORDER BY version DESC LIMIT 1) s',
                ext, same, force);
            FOR r IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1)' USING cmd LOOP
                IF NOT r.success THEN
                    RAISE EXCEPTION 'activating model % (% version %) on %:% failed: %', m.id, m.name, m.version, r.nodename, r.nodeport, r.result
                        USING ERRCODE = '55000';
                END IF;
                IF r.result OPERATOR(pg_catalog.=) '1' THEN
                    node := r.nodename; port := r.nodeport; model := m.name || ' version ' || m.version; action := 'activated';
                    RETURN NEXT;
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END
$fn$;
