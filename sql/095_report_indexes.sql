-- Indexes on the rollups that serve the reports' filters.
--
-- The daily views (100_live_views.sql) show the UTC day as a date,
-- (day AT TIME ZONE 'UTC')::date, so a filter like day >= current_date - 30
-- reaches a rollup as that expression, not as a range of its timestamptz
-- column: these indexes hold the expression itself. The rollups' updates
-- never change a key column, so folding into an existing group stays a HOT
-- update; only new groups pay for the extra entries.

-- spend_daily_by_dimension (and spend_by_day, the 'provider' rows) over a
-- window: "spend by model, last 30 days", "top tenants, last 7 days" read
-- the window's rows of one dimension, not all its history.
CREATE INDEX dimensions_daily_dimension_date_idx ON ai_cost_internal.dimensions_daily
  (dimension, ((day AT TIME ZONE 'UTC')::date));

-- spend_daily_by_dimension for one value: the drill-down to one tenant,
-- user, model or feature over any window reads its few rows a day.
CREATE INDEX dimensions_daily_value_date_idx ON ai_cost_internal.dimensions_daily
  (dimension, value, ((day AT TIME ZONE 'UTC')::date));

-- spend_daily_by_user for one tenant: "one tenant by user, last 30 days"
-- reads the tenant's users' days.
CREATE INDEX users_daily_tenant_date_idx ON ai_cost_internal.users_daily
  (tenant_id, ((day AT TIME ZONE 'UTC')::date));

-- spend_daily for one tenant: the detail grain (every dimension and the
-- user) of one tenant over days or weeks reads that tenant's hourly rows.
CREATE INDEX calls_hourly_tenant_date_idx ON ai_cost.calls_hourly
  (tenant_id, ((hour AT TIME ZONE 'UTC')::date));
