-- Plants, in one schema, objects that a hostile user could put on a victim's
-- search_path, each recording in <schema>.hits that it ran:
--   * a shadow of every pg_catalog operator, function and aggregate whose
--     argument and result types are plain base types (polymorphic ones are
--     instantiated for a few concrete types, which then match better than
--     the built-in: || (text, bigint) beats || (text, anynonarray));
--   * operators and functions on numeric type pairs that pg_catalog lacks
--     (* (integer, double precision), ln(integer)), which match better than
--     a built-in reached through an implicit cast, wherever the schema is on
--     the path, even after pg_catalog;
--   * domains named like non-keyword types (text, jsonb, timestamptz, ...)
--     whose CHECK records a hit.
-- A shadow returns NULL, so a cost computed through it is also wrong.
--
-- Run as a superuser with search_path = pg_catalog, pg_temp; then
-- SELECT pg_temp.plant_objects('planted').
CREATE OR REPLACE FUNCTION pg_temp.plant_objects(target name) RETURNS integer
LANGUAGE plpgsql AS $plant$
DECLARE
  s text := quote_ident(target);
  numeric_types regtype[] := '{int2,int4,int8,numeric,float4,float8}';
  instances regtype[] := '{int2,int4,int8,numeric,float8,text,timestamptz,jsonb,bool}';
  planted integer := 0;
  r record;
  t regtype;
  args regtype[];
  result regtype;
  combo regtype[];
BEGIN
  SET LOCAL check_function_bodies = off;
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %s', s);
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %s TO PUBLIC', s);
  EXECUTE format('CREATE TABLE %s.hits (what pg_catalog.text)', s);
  EXECUTE format('GRANT SELECT, INSERT ON %s.hits TO PUBLIC', s);
  EXECUTE format($f$CREATE FUNCTION %1$s.planted_hit(what pg_catalog.text) RETURNS pg_catalog.bool
    LANGUAGE plpgsql AS $b$BEGIN INSERT INTO %1$s.hits VALUES (what); RETURN true; END$b$$f$, s);

  -- Shadows of functions and aggregates, polymorphic ones instantiated.
  FOR r IN
    SELECT p.oid, p.proname, p.prokind, p.proretset, p.proargtypes::regtype[] AS argtypes, p.prorettype::regtype AS rettype
      FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind IN ('f', 'a')
       AND p.proallargtypes IS NULL AND p.pronargs <= 4
       AND (p.prokind = 'f' OR (SELECT a.aggkind = 'n' FROM pg_aggregate a WHERE a.aggfnoid = p.oid))
     ORDER BY p.oid
  LOOP
    FOREACH t IN ARRAY CASE WHEN EXISTS (SELECT FROM unnest(r.argtypes || r.rettype) AS x(ty) JOIN pg_type y ON y.oid = x.ty
                                         WHERE y.typname IN ('anyelement', 'anycompatible', 'anynonarray', 'anycompatiblenonarray',
                                                             'anyarray', 'anycompatiblearray'))
                             THEN instances ELSE ARRAY['-'::regtype] END LOOP
      SELECT array_agg(pg_temp.planted_instance(x.ty, t) ORDER BY x.n) INTO args FROM unnest(r.argtypes) WITH ORDINALITY AS x(ty, n);
      result := pg_temp.planted_instance(r.rettype, t);
      CONTINUE WHEN result IS NULL OR EXISTS (SELECT FROM unnest(args) AS a(ty) WHERE a.ty IS NULL);
      CONTINUE WHEN EXISTS (SELECT FROM pg_proc q WHERE q.pronamespace = 'pg_catalog'::regnamespace AND q.proname = r.proname
                              AND q.proargtypes::text = array_to_string(args::oid[], ' ') AND q.oid <> r.oid);
      CONTINUE WHEN EXISTS (SELECT FROM pg_proc q WHERE q.pronamespace = target::regnamespace AND q.proname = r.proname
                              AND q.proargtypes::text = array_to_string(args::oid[], ' '));
      PERFORM pg_temp.plant_function(s, r.proname, r.prokind, r.proretset, coalesce(args, '{}'), result);
      planted := planted + 1;
    END LOOP;
  END LOOP;

  -- Functions of numeric arguments on numeric type combinations pg_catalog lacks.
  FOR r IN
    SELECT p.proname, p.pronargs, min(p.prorettype::regtype::text)::regtype AS rettype
      FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f' AND NOT p.proretset
       AND p.pronargs IN (1, 2) AND p.proargtypes::regtype[] <@ numeric_types
       AND (p.prorettype::regtype = ANY (numeric_types) OR p.prorettype = 'bool'::regtype)
     GROUP BY p.proname, p.pronargs
  LOOP
    FOR combo IN
      SELECT CASE WHEN r.pronargs = 1 THEN ARRAY[a] ELSE ARRAY[a, b] END
        FROM unnest(numeric_types) AS a, unnest(CASE WHEN r.pronargs = 1 THEN ARRAY['-'::regtype] ELSE numeric_types END) AS b
    LOOP
      CONTINUE WHEN EXISTS (SELECT FROM pg_proc q WHERE q.proname = r.proname AND q.proargtypes::text = array_to_string(combo::oid[], ' ')
                              AND q.pronamespace IN ('pg_catalog'::regnamespace, target::regnamespace));
      PERFORM pg_temp.plant_function(s, r.proname, 'f', false, combo, r.rettype);
      planted := planted + 1;
    END LOOP;
  END LOOP;

  -- Shadows of operators, polymorphic ones instantiated.
  FOR r IN
    SELECT o.oid, o.oprname, o.oprleft::regtype AS l, o.oprright::regtype AS rt, o.oprresult::regtype AS res
      FROM pg_operator o WHERE o.oprnamespace = 'pg_catalog'::regnamespace ORDER BY o.oid
  LOOP
    FOREACH t IN ARRAY CASE WHEN EXISTS (SELECT FROM pg_type y WHERE y.oid IN (r.l, r.rt, r.res)
                                          AND y.typname IN ('anyelement', 'anycompatible', 'anynonarray', 'anycompatiblenonarray',
                                                            'anyarray', 'anycompatiblearray'))
                             THEN instances ELSE ARRAY['-'::regtype] END LOOP
      args := ARRAY[CASE WHEN r.l = 0 THEN 0::regtype ELSE pg_temp.planted_instance(r.l, t) END, pg_temp.planted_instance(r.rt, t)];
      result := pg_temp.planted_instance(r.res, t);
      CONTINUE WHEN result IS NULL OR args[1] IS NULL OR args[2] IS NULL;
      CONTINUE WHEN EXISTS (SELECT FROM pg_operator q WHERE q.oprname = r.oprname AND q.oprleft = args[1] AND q.oprright = args[2]
                              AND (q.oprnamespace = target::regnamespace
                                   OR (q.oprnamespace = 'pg_catalog'::regnamespace AND q.oid <> r.oid)));
      PERFORM pg_temp.plant_operator(s, r.oprname, args[1], args[2], result);
      planted := planted + 1;
    END LOOP;
  END LOOP;

  -- Operators on numeric type pairs that pg_catalog lacks: better matches
  -- than any built-in reached through an implicit cast.
  FOR r IN
    SELECT op.name, a.ty AS l, b.ty AS rt
      FROM unnest(ARRAY['+', '-', '*', '/', '%', '^', '=', '<>', '<', '>', '<=', '>=']) AS op(name),
           unnest(numeric_types) WITH ORDINALITY AS a(ty, n), unnest(numeric_types) WITH ORDINALITY AS b(ty, m)
     WHERE NOT EXISTS (SELECT FROM pg_operator q WHERE q.oprname = op.name AND q.oprleft = a.ty AND q.oprright = b.ty
                         AND q.oprnamespace IN ('pg_catalog'::regnamespace, target::regnamespace))
  LOOP
    PERFORM pg_temp.plant_operator(s, r.name, r.l, r.rt,
      CASE WHEN r.name IN ('=', '<>', '<', '>', '<=', '>=') THEN 'bool'::regtype
           WHEN array_position(numeric_types, r.l) > array_position(numeric_types, r.rt) THEN r.l ELSE r.rt END);
    planted := planted + 1;
  END LOOP;

  -- Domains named like types that are not SQL keywords.
  FOREACH t IN ARRAY '{text,jsonb,timestamptz,int8,float8,date,int4,int2,float4,bool,name,regclass,oid}'::regtype[] LOOP
    EXECUTE format('CREATE DOMAIN %s.%I AS pg_catalog.%I CHECK (%s.planted_hit(%L))',
                   s, (SELECT typname FROM pg_type WHERE oid = t), (SELECT typname FROM pg_type WHERE oid = t),
                   s, 'type ' || (SELECT typname FROM pg_type WHERE oid = t));
    planted := planted + 1;
  END LOOP;
  RETURN planted;
END
$plant$;

-- A polymorphic type with t put in (NULL when it cannot be), or the type
-- itself when it is a plain base type (NULL for other pseudo-types).
CREATE OR REPLACE FUNCTION pg_temp.planted_instance(ty regtype, t regtype) RETURNS regtype
LANGUAGE sql AS $$
  SELECT CASE
    WHEN y.typname IN ('anyelement', 'anycompatible', 'anynonarray', 'anycompatiblenonarray') THEN nullif(t, '-'::regtype)
    WHEN y.typname IN ('anyarray', 'anycompatiblearray')
      THEN (SELECT e.typarray::regtype FROM pg_type e WHERE e.oid = t AND t <> '-'::regtype)
    WHEN y.typtype = 'b' AND y.typname NOT IN ('cstring', 'internal') THEN ty
  END
  FROM pg_type y WHERE y.oid = ty
$$;

CREATE OR REPLACE FUNCTION pg_temp.plant_function(s text, name name, kind "char", retset boolean, args regtype[], result regtype) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  label text := CASE WHEN kind = 'a' THEN 'aggregate ' ELSE 'function ' END || name || '(' || array_to_string(args, ',') || ')';
  arglist text := (SELECT coalesce(string_agg(format_type(a.ty, NULL), ', ' ORDER BY a.n), '') FROM unnest(args) WITH ORDINALITY AS a(ty, n));
  step text;
BEGIN
  IF kind = 'a' THEN
    step := format('%s.planted_step_%s', s, substr(md5(label), 1, 12));
    EXECUTE format($f$CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql AS $b$BEGIN PERFORM %s.planted_hit(%L); RETURN NULL; END$b$$f$,
                   step, format_type(result, NULL) || CASE WHEN arglist = '' THEN '' ELSE ', ' || arglist END,
                   format_type(result, NULL), s, label);
    EXECUTE format('CREATE AGGREGATE %s.%I (%s) (SFUNC = %s, STYPE = %s)',
                   s, name, CASE WHEN arglist = '' THEN '*' ELSE arglist END, step, format_type(result, NULL));
  ELSE
    EXECUTE format($f$CREATE FUNCTION %s.%I(%s) RETURNS %s%s LANGUAGE plpgsql AS $b$BEGIN PERFORM %s.planted_hit(%L); RETURN%s; END$b$$f$,
                   s, name, arglist, CASE WHEN retset THEN 'SETOF ' ELSE '' END, format_type(result, NULL), s, label,
                   CASE WHEN retset THEN '' ELSE ' NULL' END);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.plant_operator(s text, name name, l regtype, r regtype, result regtype) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  label text := 'operator ' || name || '(' || CASE WHEN l = 0 THEN 'NONE' ELSE l::text END || ',' || r::text || ')';
  fn text := format('%s.planted_op_%s', s, substr(md5(label), 1, 12));
BEGIN
  EXECUTE format($f$CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql AS $b$BEGIN PERFORM %s.planted_hit(%L); RETURN NULL; END$b$$f$,
                 fn, CASE WHEN l = 0 THEN '' ELSE format_type(l, NULL) || ', ' END || format_type(r, NULL),
                 format_type(result, NULL), s, label);
  EXECUTE format('CREATE OPERATOR %s.%s (%sRIGHTARG = %s, FUNCTION = %s)', s, name,
                 CASE WHEN l = 0 THEN '' ELSE 'LEFTARG = ' || format_type(l, NULL) || ', ' END, format_type(r, NULL), fn);
END
$fn$;
