-- A normalized listing of everything extension synthsearch put into the current database: one line
-- per fact, sorted, no OIDs (names, signatures and definitions instead). tests/system/upgrade_catalog.sh
-- diffs it between a fresh CREATE EXTENSION and an older release's install script followed by
-- ALTER EXTENSION ... UPDATE; any difference is a missing (or wrong) step in an upgrade script.
--   psql -v roles_before='{...}' -tA -f extension_catalog.sql
-- roles_before: the roles that existed before the extension was created; the roles made since
-- (roles are cluster-wide and never extension members) are listed with their attributes.
-- What it covers: every member (pg_describe_object over pg_depend deptype 'e'); functions and
-- procedures (signature with argument names and defaults, result, language, volatility,
-- strictness, parallel safety, security definer, leakproof, cost, rows, SET options, C symbol and
-- library, SQL body, owner, ACL); aggregates; tables, views, sequences (kind, persistence, options,
-- ACL, row security, columns in order with type, NOT NULL, default, identity, generated, storage,
-- compression, collation and column ACL; constraints, indexes, triggers, policies, view
-- definitions, sequence parameters and ownership); types (every pg_type field that defines
-- behaviour, enum labels, domain constraints); operators; operator classes and families with their
-- operators and support functions; access methods; casts; schemas; comments; pg_init_privs (what
-- pg_dump compares ACLs against); the extension's own row (version, config tables and filters).
SET search_path = public;
WITH ext AS (
    SELECT * FROM pg_extension WHERE extname = 'synthsearch'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
    FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.* FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
), opfamilies AS (
    SELECT f.oid FROM members m JOIN pg_opfamily f ON m.classid = 'pg_opfamily'::regclass AND f.oid = m.objid
    UNION
    SELECT o.opcfamily FROM members m JOIN pg_opclass o ON m.classid = 'pg_opclass'::regclass AND o.oid = m.objid
), lines(line) AS (
    SELECT 'extension ' || concat_ws(' ', 'version=' || extversion, 'relocatable=' || extrelocatable,
           'schema=' || extnamespace::regnamespace, 'owner=' || extowner::regrole)
    FROM ext
    UNION ALL
    SELECT 'extension config ' || c.cfg::regclass || ' condition=' || coalesce(c.cond, '')
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS c(cfg, cond)
    UNION ALL
    SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM members
    UNION ALL
    -- functions, procedures, aggregates, window functions
    SELECT 'function ' || p.oid::regprocedure || ' ' || concat_ws(' ',
           'kind=' || p.prokind::text, 'args=(' || pg_get_function_arguments(p.oid) || ')',
           'returns=' || coalesce(pg_get_function_result(p.oid), ''), 'language=' || l.lanname,
           'volatility=' || p.provolatile::text, 'strict=' || p.proisstrict, 'parallel=' || p.proparallel::text,
           'security_definer=' || p.prosecdef, 'leakproof=' || p.proleakproof, 'cost=' || p.procost,
           'rows=' || p.prorows, 'support=' || p.prosupport::regproc, 'config=' || coalesce(p.proconfig::text, ''),
           'src=' || p.prosrc, 'bin=' || coalesce(p.probin, ''),
           'sqlbody=' || coalesce(pg_get_function_sqlbody(p.oid), ''),
           'owner=' || p.proowner::regrole, 'acl=' || coalesce(p.proacl::text, 'default'))
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    JOIN pg_language l ON l.oid = p.prolang
    UNION ALL
    SELECT 'aggregate ' || a.aggfnoid::regprocedure || ' ' || concat_ws(' ',
           'kind=' || a.aggkind::text, 'direct_args=' || a.aggnumdirectargs, 'sfunc=' || a.aggtransfn::regproc,
           'finalfunc=' || a.aggfinalfn::regproc, 'combinefunc=' || a.aggcombinefn::regproc,
           'serialfunc=' || a.aggserialfn::regproc, 'deserialfunc=' || a.aggdeserialfn::regproc,
           'msfunc=' || a.aggmtransfn::regproc, 'minvfunc=' || a.aggminvtransfn::regproc,
           'mfinalfunc=' || a.aggmfinalfn::regproc, 'finalextra=' || a.aggfinalextra,
           'finalmodify=' || a.aggfinalmodify::text, 'sortop=' || a.aggsortop::regoperator,
           'stype=' || a.aggtranstype::regtype, 'sspace=' || a.aggtransspace,
           'mstype=' || a.aggmtranstype::regtype, 'initcond=' || coalesce(a.agginitval, 'NULL'),
           'minitcond=' || coalesce(a.aggminitval, 'NULL'))
    FROM members m JOIN pg_aggregate a ON m.classid = 'pg_proc'::regclass AND a.aggfnoid = m.objid
    UNION ALL
    -- tables, views, sequences, indexes that are members
    SELECT 'relation ' || c.oid::regclass || ' ' || concat_ws(' ', 'kind=' || c.relkind::text,
           'persistence=' || c.relpersistence::text, 'options=' || coalesce(c.reloptions::text, ''),
           'rowsecurity=' || c.relrowsecurity, 'forcerowsecurity=' || c.relforcerowsecurity,
           'replident=' || c.relreplident::text, 'access_method=' || coalesce(am.amname, ''),
           'owner=' || c.relowner::regrole, 'acl=' || coalesce(c.relacl::text, 'default'))
    FROM rels c LEFT JOIN pg_am am ON am.oid = c.relam
    UNION ALL
    SELECT 'column ' || c.oid::regclass || ' #' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
           || ' ' || quote_ident(a.attname) || ' ' || concat_ws(' ', format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attnotnull THEN 'NOT NULL' END, 'default=' || pg_get_expr(ad.adbin, ad.adrelid),
           'identity=' || nullif(a.attidentity::text, ''), 'generated=' || nullif(a.attgenerated::text, ''),
           'storage=' || a.attstorage::text, 'compression=' || nullif(a.attcompression::text, ''),
           'collation=' || CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
           -- (pg_attver=..., a stamp some servers keep in attoptions, differs per install)
           'options=' || (SELECT array_agg(o ORDER BY o) FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg_attver=%')::text,
           'acl=' || a.attacl::text)
    FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || c.oid::regclass || ' ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid)
           || CASE WHEN k.condeferrable THEN ' deferrable' ELSE '' END
    FROM rels c JOIN pg_constraint k ON k.conrelid = c.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
           || coalesce(' options=' || ic.reloptions::text, '') || CASE WHEN i.indisclustered THEN ' clustered' ELSE '' END
    FROM rels c JOIN pg_index i ON i.indrelid = c.oid JOIN pg_class ic ON ic.oid = i.indexrelid
    UNION ALL
    SELECT 'trigger ' || c.oid::regclass || ' ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || c.oid::regclass || ' ' || quote_ident(p.polname) || ' ' || concat_ws(' ',
           'cmd=' || p.polcmd::text, 'permissive=' || p.polpermissive,
           'roles=' || (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY 1)
                        FROM unnest(p.polroles) r),
           'using=' || pg_get_expr(p.polqual, p.polrelid), 'check=' || pg_get_expr(p.polwithcheck, p.polrelid))
    FROM rels c JOIN pg_policy p ON p.polrelid = c.oid
    UNION ALL
    SELECT 'rule ' || c.oid::regclass || ' ' || r.rulename || ' ' || pg_get_ruledef(r.oid)
    FROM rels c JOIN pg_rewrite r ON r.ev_class = c.oid
    UNION ALL
    SELECT 'sequence ' || c.oid::regclass || ' ' || concat_ws(' ', 'type=' || s.seqtypid::regtype,
           'start=' || s.seqstart, 'increment=' || s.seqincrement, 'min=' || s.seqmin, 'max=' || s.seqmax,
           'cache=' || s.seqcache, 'cycle=' || s.seqcycle,
           'owned_by=' || (SELECT d.refobjid::regclass || '.' || quote_ident(a.attname)
                           FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
    UNION ALL
    -- types
    SELECT 'type ' || t.oid::regtype || ' ' || concat_ws(' ', 'kind=' || t.typtype::text, 'len=' || t.typlen,
           'byval=' || t.typbyval, 'category=' || t.typcategory::text, 'preferred=' || t.typispreferred,
           'delim=' || t.typdelim::text, 'align=' || t.typalign::text, 'storage=' || t.typstorage::text,
           'notnull=' || t.typnotnull, 'base=' || t.typbasetype::regtype, 'typmod=' || t.typtypmod,
           'ndims=' || t.typndims, 'elem=' || t.typelem::regtype,
           'collation=' || CASE WHEN t.typcollation <> 0 THEN t.typcollation::regcollation::text END,
           'input=' || t.typinput::regproc, 'output=' || t.typoutput::regproc,
           'receive=' || t.typreceive::regproc, 'send=' || t.typsend::regproc,
           'typmod_in=' || t.typmodin::regproc, 'typmod_out=' || t.typmodout::regproc,
           'analyze=' || t.typanalyze::regproc, 'subscript=' || t.typsubscript::regproc,
           'default=' || coalesce(t.typdefault, 'NULL'), 'owner=' || t.typowner::regrole,
           'acl=' || coalesce(t.typacl::text, 'default'),
           'array=' || CASE WHEN t.typarray <> 0 THEN t.typarray::regtype::text END)
    FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT 'enum ' || e.enumtypid::regtype || ' #' || row_number() OVER (PARTITION BY e.enumtypid ORDER BY e.enumsortorder)
           || ' ' || e.enumlabel
    FROM members m JOIN pg_enum e ON m.classid = 'pg_type'::regclass AND e.enumtypid = m.objid
    UNION ALL
    SELECT 'domain constraint ' || k.contypid::regtype || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM members m JOIN pg_constraint k ON m.classid = 'pg_type'::regclass AND k.contypid = m.objid
    UNION ALL
    -- operators
    SELECT 'operator ' || o.oid::regoperator || ' ' || concat_ws(' ', 'kind=' || o.oprkind::text,
           'result=' || o.oprresult::regtype, 'function=' || o.oprcode::regprocedure,
           'commutator=' || o.oprcom::regoperator, 'negator=' || o.oprnegate::regoperator,
           'restrict=' || o.oprrest::regproc, 'join=' || o.oprjoin::regproc,
           'merges=' || o.oprcanmerge, 'hashes=' || o.oprcanhash, 'owner=' || o.oprowner::regrole)
    FROM members m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
    UNION ALL
    -- operator classes and families, with their operators and support functions
    SELECT 'operator class ' || quote_ident(o.opcname) || ' using ' || am.amname || ' ' || concat_ws(' ',
           'type=' || o.opcintype::regtype, 'default=' || o.opcdefault,
           'storage=' || CASE WHEN o.opckeytype <> 0 THEN o.opckeytype::regtype::text END,
           'family=' || f.opfname)
    FROM members m JOIN pg_opclass o ON m.classid = 'pg_opclass'::regclass AND o.oid = m.objid
    JOIN pg_am am ON am.oid = o.opcmethod JOIN pg_opfamily f ON f.oid = o.opcfamily
    UNION ALL
    SELECT 'operator family ' || quote_ident(f.opfname) || ' using ' || am.amname || ' operator '
           || p.amopstrategy || ' ' || p.amopopr::regoperator || ' ' || concat_ws(' ',
           'left=' || p.amoplefttype::regtype, 'right=' || p.amoprighttype::regtype,
           'purpose=' || p.amoppurpose::text,
           'sort_family=' || (SELECT sf.opfname FROM pg_opfamily sf WHERE sf.oid = p.amopsortfamily))
    FROM opfamilies x JOIN pg_opfamily f ON f.oid = x.oid JOIN pg_am am ON am.oid = f.opfmethod
    JOIN pg_amop p ON p.amopfamily = f.oid
    UNION ALL
    SELECT 'operator family ' || quote_ident(f.opfname) || ' using ' || am.amname || ' function '
           || p.amprocnum || ' ' || p.amproc::regprocedure || ' ' || concat_ws(' ',
           'left=' || p.amproclefttype::regtype, 'right=' || p.amprocrighttype::regtype)
    FROM opfamilies x JOIN pg_opfamily f ON f.oid = x.oid JOIN pg_am am ON am.oid = f.opfmethod
    JOIN pg_amproc p ON p.amprocfamily = f.oid
    UNION ALL
    SELECT 'access method ' || a.amname || ' type=' || a.amtype::text || ' handler=' || a.amhandler::regprocedure
    FROM members m JOIN pg_am a ON m.classid = 'pg_am'::regclass AND a.oid = m.objid
    UNION ALL
    SELECT 'cast ' || c.castsource::regtype || ' -> ' || c.casttarget::regtype || ' ' || concat_ws(' ',
           'function=' || CASE WHEN c.castfunc <> 0 THEN c.castfunc::regprocedure::text END,
           'context=' || c.castcontext::text, 'method=' || c.castmethod::text)
    FROM members m JOIN pg_cast c ON m.classid = 'pg_cast'::regclass AND c.oid = m.objid
    UNION ALL
    SELECT 'schema ' || n.nspname || ' owner=' || n.nspowner::regrole || ' acl=' || coalesce(n.nspacl::text, 'default')
    FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    -- comments on members and on their columns
    SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
    FROM (SELECT classid, objid FROM members UNION SELECT 'pg_class'::regclass, oid FROM rels) m
    JOIN pg_description d ON d.classoid = m.classid AND d.objoid = m.objid
    UNION ALL
    -- the initial privileges pg_dump compares against (set by GRANT/REVOKE inside extension scripts)
    SELECT 'init privileges ' || pg_describe_object(i.classoid, i.objoid, i.objsubid) || ' ' || i.privtype::text
           || ' ' || i.initprivs::text
    FROM (SELECT classid, objid FROM members UNION SELECT 'pg_class'::regclass, oid FROM rels) m
    JOIN pg_init_privs i ON i.classoid = m.classid AND i.objoid = m.objid
    UNION ALL
    -- roles created since (cluster-wide; an extension script may create them)
    SELECT 'role ' || r.rolname || ' ' || concat_ws(' ', 'super=' || r.rolsuper, 'inherit=' || r.rolinherit,
           'createrole=' || r.rolcreaterole, 'createdb=' || r.rolcreatedb, 'login=' || r.rolcanlogin,
           'replication=' || r.rolreplication, 'bypassrls=' || r.rolbypassrls, 'connlimit=' || r.rolconnlimit,
           'config=' || r.rolconfig::text)
    FROM pg_roles r WHERE r.rolname <> ALL (:'roles_before'::text[])
    UNION ALL
    SELECT 'role membership ' || m.roleid::regrole || ' granted to ' || m.member::regrole
           || ' admin=' || m.admin_option
    FROM pg_auth_members m JOIN pg_roles r ON r.oid IN (m.roleid, m.member)
    WHERE r.rolname <> ALL (:'roles_before'::text[])
)
SELECT DISTINCT line COLLATE "C" AS line FROM lines ORDER BY 1;
