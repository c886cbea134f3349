import type { TestDatabase } from './database.js';

/**
 * A description of everything pg-ai-cost owns in a database, by name, without
 * OIDs: tables and their columns, constraints, indexes, views, functions
 * (with a hash of their bodies), triggers, policies, grants and comments. Two
 * snapshots are equal when the schemas are the same for every user and tool.
 * A never-granted object has a NULL acl, and the same object after a GRANT and
 * REVOKE an explicit one with the same meaning: both are compared as explicit.
 */
export async function schemaSnapshot(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ line: string }>(`
    WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'ai_cost')
    SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' acl=' || coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))::text ||
           ' rls=' || c.relrowsecurity || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '') AS line
      FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
           ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') ||
           ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text ||
           ' comment=' || coalesce(col_description(c.oid, a.attnum), '')
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
     WHERE c.relnamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
      FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid)
      FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM ns))
    UNION ALL
    SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid))
      FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' returns ' || coalesce(pg_get_function_result(p.oid), '(procedure)') ||
           ' body=' || md5(p.prosrc) || ' config=' || coalesce(p.proconfig::text, '') ||
           ' secdef=' || p.prosecdef || ' volatile=' || p.provolatile::text || ' acl=' || coalesce(p.proacl, acldefault('f'::"char", p.proowner))::text ||
           ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
      FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t WHERE NOT t.tgisinternal
       AND t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN (SELECT oid FROM ns))
    UNION ALL
    SELECT 'policy ' || tablename || ' ' || policyname || ' ' || cmd || ' ' || array_to_string(roles, ',') ||
           ' using=' || coalesce(qual, '') || ' check=' || coalesce(with_check, '')
      FROM pg_policies WHERE schemaname = 'ai_cost'
    UNION ALL
    SELECT 'type ' || t.typname || ' ' || t.typtype::text
      FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns) AND t.typtype IN ('e', 'd', 'c')
       AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)
    UNION ALL
    SELECT 'schema acl=' || coalesce(nspacl, acldefault('n'::"char", nspowner))::text || ' comment=' || coalesce(obj_description(oid, 'pg_namespace'), '')
      FROM pg_namespace WHERE nspname = 'ai_cost'`);
  return rows.map((row) => row.line).sort();
}
