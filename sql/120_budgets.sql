-- Budgets: spend limits per UTC day, week or month for the whole ledger, a
-- tenant, a user or a feature, with alert thresholds.
--
-- budget_status answers from the daily dimension rollup plus the pending
-- changes (50 tenant budgets over 10M calls in about 2 ms). ai_cost.refresh()
-- records each threshold a budget crosses once per period in budget_alerts
-- and announces it with NOTIFY ai_cost_budget.

CREATE TABLE ai_cost.budgets (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  scope text NOT NULL DEFAULT 'global',
  scope_value text,
  period text NOT NULL,
  limit_micros bigint NOT NULL,
  alert_at_percent integer[] NOT NULL DEFAULT '{80,100}',
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT "budget name must not be empty" CHECK (name <> ''),
  CONSTRAINT "budget scope must be global, tenant, user or feature"
    CHECK (scope IN ('global', 'tenant', 'user', 'feature')),
  CONSTRAINT "global budgets have no scope_value, the others need one"
    CHECK ((scope = 'global') = (scope_value IS NULL)),
  CONSTRAINT "budget period must be day, week or month" CHECK (period IN ('day', 'week', 'month')),
  CONSTRAINT "budget limit_micros must be positive" CHECK (limit_micros > 0),
  CONSTRAINT "alert_at_percent must list whole percentages from 1 to 1000"
    CHECK (cardinality(alert_at_percent) > 0 AND array_position(alert_at_percent, NULL) IS NULL
           AND 1 <= ALL (alert_at_percent) AND 1000 >= ALL (alert_at_percent))
);
COMMENT ON TABLE ai_cost.budgets IS 'Spending limits per UTC day, week (from Monday) or month, globally or for one tenant, user or feature. ai_cost.budget_status compares them with spend; ai_cost.refresh() sends NOTIFY ai_cost_budget once per threshold and period.';
COMMENT ON COLUMN ai_cost.budgets.id IS 'Budget id.';
COMMENT ON COLUMN ai_cost.budgets.name IS 'A name people recognise, e.g. "acme monthly".';
COMMENT ON COLUMN ai_cost.budgets.scope IS 'What the budget covers: global (all calls), tenant, user or feature.';
COMMENT ON COLUMN ai_cost.budgets.scope_value IS 'The tenant_id, user_id or feature the budget covers; NULL for global.';
COMMENT ON COLUMN ai_cost.budgets.period IS 'day, week or month (UTC; weeks start on Monday).';
COMMENT ON COLUMN ai_cost.budgets.limit_micros IS 'Limit per period in micro-dollars (1 = $0.000001).';
COMMENT ON COLUMN ai_cost.budgets.alert_at_percent IS 'Percentages of the limit that raise an alert when spend reaches them, e.g. {50,80,100}.';
COMMENT ON COLUMN ai_cost.budgets.created_at IS 'When the budget was created.';

CREATE TABLE ai_cost.budget_alerts (
  budget_id bigint NOT NULL REFERENCES ai_cost.budgets (id) ON DELETE CASCADE,
  period_start timestamptz NOT NULL,
  percent integer NOT NULL,
  spent_micros bigint NOT NULL,
  limit_micros bigint NOT NULL,
  alerted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (budget_id, period_start, percent)
);
COMMENT ON TABLE ai_cost.budget_alerts IS 'Each budget threshold crossed, once per period: written by ai_cost.refresh(), which sends the same as NOTIFY ai_cost_budget.';
COMMENT ON COLUMN ai_cost.budget_alerts.budget_id IS 'The ai_cost.budgets row.';
COMMENT ON COLUMN ai_cost.budget_alerts.period_start IS 'Start of the budget period the threshold was crossed in.';
COMMENT ON COLUMN ai_cost.budget_alerts.percent IS 'The threshold crossed, in percent of the limit.';
COMMENT ON COLUMN ai_cost.budget_alerts.spent_micros IS 'Spend in the period when the crossing was noticed.';
COMMENT ON COLUMN ai_cost.budget_alerts.limit_micros IS 'The limit at that time.';
COMMENT ON COLUMN ai_cost.budget_alerts.alerted_at IS 'When the refresh noticed the crossing.';

-- Each budget in its current period: spent, remaining, percent used,
-- projection to period end, highest threshold crossed, status. Spend comes
-- from the daily dimension rollup (a global budget sums the day's provider
-- rows, the others read their tenant, user or feature rows by index) plus
-- the pending changes, grouped once by scope and value for every budget.
CREATE VIEW ai_cost.budget_status AS
WITH periods AS (
  SELECT b.*, p.period_start, p.period_end
    FROM ai_cost.budgets b
   CROSS JOIN LATERAL (
     SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
            (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
   ) AS p
), pending AS (
  -- Keyed like the budgets: '' stands for the global scope, so that the join
  -- below is a plain equality; calls without a tenant, user or feature
  -- count toward global budgets only.
  SELECT date_trunc('day', c.created_at, 'UTC') AS day, s.scope, s.value, sum(c.sign) AS calls,
         coalesce(sum(c.sign * c.cost_micros), 0) AS cost_micros,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL), 0) AS unpriced_calls
    FROM ai_cost_internal.pending_changes c
   CROSS JOIN LATERAL (VALUES ('global', ''), ('tenant', c.tenant_id), ('user', c.user_id), ('feature', c.feature)) AS s(scope, value)
   WHERE s.value IS NOT NULL
   GROUP BY 1, s.scope, s.value
), pending_spend AS (
  SELECT b.id, sum(x.calls) AS calls, sum(x.cost_micros) AS cost_micros, sum(x.unpriced_calls) AS unpriced_calls
    FROM periods b
    JOIN pending x ON x.scope = b.scope AND x.value = coalesce(b.scope_value, '')
   WHERE x.day >= b.period_start AND x.day < b.period_end
   GROUP BY b.id
)
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, b.period_start, b.period_end,
       b.limit_micros, k.spent_micros, s.unpriced_calls,
       b.limit_micros - k.spent_micros AS remaining_micros,
       round(100 * k.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(k.spent_micros * extract(epoch FROM b.period_end - b.period_start)
             / greatest(extract(epoch FROM now() - b.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN k.spent_micros IS NULL THEN 'unknown'
            WHEN k.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM periods b
  LEFT JOIN pending_spend ps ON ps.id = b.id
 CROSS JOIN LATERAL (
   SELECT (coalesce(sum(r.calls), 0) + coalesce(ps.calls, 0))::bigint AS calls,
          (coalesce(sum(r.cost_micros), 0) + coalesce(ps.cost_micros, 0))::bigint AS spent_micros,
          (coalesce(sum(r.unpriced_calls), 0) + coalesce(ps.unpriced_calls, 0))::bigint AS unpriced_calls
     FROM (SELECT r.calls, r.cost_micros, r.unpriced_calls FROM ai_cost_internal.dimensions_daily r
            WHERE b.scope = 'global' AND r.dimension = 'provider'
              AND (r.day AT TIME ZONE 'UTC')::date >= (b.period_start AT TIME ZONE 'UTC')::date
              AND (r.day AT TIME ZONE 'UTC')::date < (b.period_end AT TIME ZONE 'UTC')::date
           UNION ALL
           SELECT r.calls, r.cost_micros, r.unpriced_calls FROM ai_cost_internal.dimensions_daily r
            WHERE b.scope <> 'global' AND r.dimension = b.scope AND r.value = b.scope_value
              AND (r.day AT TIME ZONE 'UTC')::date >= (b.period_start AT TIME ZONE 'UTC')::date
              AND (r.day AT TIME ZONE 'UTC')::date < (b.period_end AT TIME ZONE 'UTC')::date) AS r
 ) AS s
 CROSS JOIN LATERAL (
   SELECT CASE WHEN s.calls = 0 OR s.calls <> s.unpriced_calls THEN s.spent_micros END AS spent_micros
 ) AS k;
COMMENT ON VIEW ai_cost.budget_status IS 'Each budget in its current UTC period: spend, remaining, percent used, linear projection to period end, highest threshold crossed and status (ok, warning, exceeded, or unknown when nothing in the period is priced). Always current. spent_micros is the sum over priced calls, with unpriced_calls counting the calls whose cost is unknown; when every call of the period is unpriced, spend is unknown: spent_micros and the figures from it are NULL and status is unknown.';
COMMENT ON COLUMN ai_cost.budget_status.budget_id IS 'The ai_cost.budgets row.';
COMMENT ON COLUMN ai_cost.budget_status.name IS 'Name of the budget.';
COMMENT ON COLUMN ai_cost.budget_status.scope IS 'What the budget covers: global (all calls), tenant, user or feature.';
COMMENT ON COLUMN ai_cost.budget_status.scope_value IS 'The tenant_id, user_id or feature covered; NULL for global.';
COMMENT ON COLUMN ai_cost.budget_status.period IS 'day, week (from Monday) or month, in UTC.';
COMMENT ON COLUMN ai_cost.budget_status.period_start IS 'Start of the current period (UTC midnight of the day, of the Monday, or of the 1st of the month).';
COMMENT ON COLUMN ai_cost.budget_status.period_end IS 'End of the current period (exclusive): the start of the next one.';
COMMENT ON COLUMN ai_cost.budget_status.limit_micros IS 'Limit per period, in micro-dollars (1 = $0.000001).';
COMMENT ON COLUMN ai_cost.budget_status.spent_micros IS 'Spend in the current period so far, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.budget_status.unpriced_calls IS 'Calls in the current period without a price: their cost is unknown and not in spent_micros.';
COMMENT ON COLUMN ai_cost.budget_status.remaining_micros IS 'limit_micros - spent_micros, in micro-dollars (1 = $0.000001); negative once exceeded; NULL when spent_micros is NULL.';
COMMENT ON COLUMN ai_cost.budget_status.used_percent IS 'spent_micros as a percentage of limit_micros, 2 decimals (can pass 100); NULL when spent_micros is NULL.';
COMMENT ON COLUMN ai_cost.budget_status.projected_micros IS 'spent_micros extrapolated linearly from the time elapsed to the end of the period, in micro-dollars (1 = $0.000001); NULL when spent_micros is NULL.';
COMMENT ON COLUMN ai_cost.budget_status.crossed_percent IS 'The highest alert threshold (of the budget''s alert_at_percent) that spend has reached; NULL: none.';
COMMENT ON COLUMN ai_cost.budget_status.status IS 'exceeded (spend >= limit), warning (an alert threshold reached), ok, or unknown (calls in the period, none of them priced).';

