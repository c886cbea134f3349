-- Up Migration
--
-- Budgets that answer from an index. budget_status summed each budget's
-- period from the daily rollups with one CASE over the scope, which no index
-- can serve: every budget read the whole period of the daily rollup, about 3 s
-- for 50 tenant budgets over 1M calls (`npm run bench queries`), and
-- ai_cost.refresh() evaluates budget_status on every run to raise alerts.
-- Now each scope has its own branch with a plain equality (the branches of
-- other scopes are skipped by their constant test on b.scope), and the daily
-- rollups have the indexes those branches need. The view's columns and
-- results are unchanged.

CREATE INDEX _private_calls_daily_tenant_idx ON ai_cost._private_calls_daily (tenant_id, day);
CREATE INDEX _private_calls_daily_feature_idx ON ai_cost._private_calls_daily (feature, day);
CREATE INDEX _private_users_daily_user_idx ON ai_cost._private_users_daily (user_id, day);

-- Each budget in its current period: spent, remaining, percent used,
-- projection to period end, highest threshold crossed, status.
CREATE OR REPLACE VIEW ai_cost.budget_status AS
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, p.period_start, p.period_end,
       b.limit_micros, s.spent_micros, s.unpriced_calls,
       b.limit_micros - s.spent_micros AS remaining_micros,
       round(100 * s.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(s.spent_micros * extract(epoch FROM p.period_end - p.period_start)
             / greatest(extract(epoch FROM now() - p.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * s.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN s.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * s.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM ai_cost.budgets b
 CROSS JOIN LATERAL (
   SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
          (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
 ) AS p
 CROSS JOIN LATERAL (
   SELECT coalesce(sum(r.cost_micros), 0)::bigint AS spent_micros, coalesce(sum(r.unpriced_calls), 0)::bigint AS unpriced_calls
     FROM (SELECT d.cost_micros, d.unpriced_calls FROM ai_cost._private_calls_daily_live d
            WHERE b.scope = 'global' AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.cost_micros, d.unpriced_calls FROM ai_cost._private_calls_daily_live d
            WHERE b.scope = 'tenant' AND d.tenant_id = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.cost_micros, d.unpriced_calls FROM ai_cost._private_calls_daily_live d
            WHERE b.scope = 'feature' AND d.feature = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT u.cost_micros, u.unpriced_calls FROM ai_cost._private_users_daily_live u
            WHERE b.scope = 'user' AND u.user_id = b.scope_value AND u.day >= p.period_start AND u.day < p.period_end) AS r
 ) AS s;

-- Down Migration

CREATE OR REPLACE VIEW ai_cost.budget_status AS
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, p.period_start, p.period_end,
       b.limit_micros, s.spent_micros, s.unpriced_calls,
       b.limit_micros - s.spent_micros AS remaining_micros,
       round(100 * s.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(s.spent_micros * extract(epoch FROM p.period_end - p.period_start)
             / greatest(extract(epoch FROM now() - p.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * s.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN s.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * s.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM ai_cost.budgets b
 CROSS JOIN LATERAL (
   SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
          (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
 ) AS p
 CROSS JOIN LATERAL (
   SELECT coalesce(sum(r.cost_micros), 0)::bigint AS spent_micros, coalesce(sum(r.unpriced_calls), 0)::bigint AS unpriced_calls
     FROM (SELECT d.day, d.cost_micros, d.unpriced_calls FROM ai_cost._private_calls_daily_live d
            WHERE b.scope <> 'user'
              AND CASE b.scope WHEN 'tenant' THEN d.tenant_id = b.scope_value
                               WHEN 'feature' THEN d.feature = b.scope_value
                               ELSE true END
           UNION ALL
           SELECT u.day, u.cost_micros, u.unpriced_calls FROM ai_cost._private_users_daily_live u
            WHERE b.scope = 'user' AND u.user_id = b.scope_value) AS r
    WHERE r.day >= p.period_start AND r.day < p.period_end
 ) AS s;

DROP INDEX ai_cost._private_calls_daily_tenant_idx;
DROP INDEX ai_cost._private_calls_daily_feature_idx;
DROP INDEX ai_cost._private_users_daily_user_idx;
