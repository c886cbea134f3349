-- Alerts on unpriced models: when the refresh first folds calls of a
-- provider, model and service tier that have no price, it records the model
-- and sends NOTIFY ai_cost_unpriced_model, so that a new model is priced the
-- day it ships rather than found at month end.
--
-- Detected at refresh time, not on insert: triggers on the hourly unpriced
-- rollup (ai_cost_internal.unpriced_hourly, 090_rollups.sql) see the hour
-- groups each fold adds or empties, so the work is proportional to them. A
-- model is announced once while it has unpriced calls; once none are left
-- (priced and repriced, or deleted), a later unpriced call announces it again.

CREATE TABLE ai_cost.unpriced_model_alert_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  enabled boolean NOT NULL DEFAULT true
);

INSERT INTO ai_cost.unpriced_model_alert_settings DEFAULT VALUES;
COMMENT ON TABLE ai_cost.unpriced_model_alert_settings IS 'Whether ai_cost.refresh() announces models whose calls have no price (NOTIFY ai_cost_unpriced_model): one row, change it with UPDATE.';
COMMENT ON COLUMN ai_cost.unpriced_model_alert_settings.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN ai_cost.unpriced_model_alert_settings.enabled IS 'True (default): the refresh sends NOTIFY ai_cost_unpriced_model the first time it folds unpriced calls of a provider, model and service tier. False: it neither sends nor records anything, and a model still unpriced when alerts are enabled again is announced at its next unpriced call in a new hour.';

CREATE TABLE ai_cost_internal.unpriced_model_alerts (
  provider text NOT NULL,
  model text NOT NULL,
  service_tier text NOT NULL,
  unpriced_reason text NOT NULL,
  first_hour timestamptz NOT NULL,
  alerted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, model, service_tier)
);
COMMENT ON TABLE ai_cost_internal.unpriced_model_alerts IS 'Internal: the models announced with NOTIFY ai_cost_unpriced_model that still have unpriced calls in the rollups, so that each is announced once.';

-- Records and announces the models among the hour groups a fold added that
-- are not announced yet. Runs inside the fold, whose errors of the data
-- class set calls aside: nothing here may raise one. NOTIFY refuses a
-- payload of 8000 bytes or more, which a long model id and a reason naming
-- it again could reach once escaped as JSON: the reason is then left out.
-- TimeZone UTC: first_hour reads as a UTC instant in the payload.
CREATE FUNCTION ai_cost_internal.announce_unpriced_models() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET "TimeZone" = 'UTC' AS $$
DECLARE
  announced record;
  payload text;
BEGIN
  IF NOT (SELECT s.enabled FROM ai_cost.unpriced_model_alert_settings s) THEN
    RETURN NULL;
  END IF;
  FOR announced IN
    WITH new_models AS (
      -- A model's reason is that of its earliest hour among those added.
      SELECT DISTINCT ON (a.provider, a.model, a.service_tier) a.provider, a.model, a.service_tier, a.unpriced_reason
        FROM added_hours a
       WHERE a.calls > 0
         AND NOT EXISTS (SELECT FROM ai_cost_internal.unpriced_model_alerts m
                          WHERE m.provider = a.provider AND m.model = a.model AND m.service_tier = a.service_tier)
       ORDER BY a.provider, a.model, a.service_tier, a.hour, a.unpriced_reason
    )
    INSERT INTO ai_cost_internal.unpriced_model_alerts (provider, model, service_tier, unpriced_reason, first_hour)
    SELECT n.provider, n.model, n.service_tier, n.unpriced_reason,
           -- Earlier hours too: calls folded while alerts were disabled.
           (SELECT min(u.hour) FROM ai_cost_internal.unpriced_hourly u
             WHERE u.provider = n.provider AND u.model = n.model AND u.service_tier = n.service_tier AND u.calls > 0)
      FROM new_models n
    ON CONFLICT DO NOTHING
    RETURNING *
  LOOP
    payload := json_build_object('provider', announced.provider, 'model', announced.model,
                                 'service_tier', announced.service_tier, 'unpriced_reason', announced.unpriced_reason,
                                 'first_hour', announced.first_hour)::text;
    IF octet_length(payload) >= 8000 THEN
      payload := json_build_object('provider', announced.provider, 'model', announced.model,
                                   'service_tier', announced.service_tier, 'first_hour', announced.first_hour)::text;
    END IF;
    PERFORM pg_notify('ai_cost_unpriced_model', payload);
  END LOOP;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.announce_unpriced_models() IS 'Trigger: records the models of the unpriced hour groups a fold added that were not announced yet, and sends NOTIFY ai_cost_unpriced_model for each, when ai_cost.unpriced_model_alert_settings enables it.';

-- Forgets the announcement of a model once the rollups hold no unpriced call
-- of it, so that it is announced again if it goes unpriced again: after the
-- hour groups a fold emptied are deleted, and when the rollups are truncated.
CREATE FUNCTION ai_cost_internal.forget_unpriced_model_alerts() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE ai_cost_internal.unpriced_model_alerts;
    RETURN NULL;
  END IF;
  DELETE FROM ai_cost_internal.unpriced_model_alerts m
   WHERE EXISTS (SELECT FROM removed_hours r
                  WHERE r.provider = m.provider AND r.model = m.model AND r.service_tier = m.service_tier)
     AND NOT EXISTS (SELECT FROM ai_cost_internal.unpriced_hourly u
                      WHERE u.provider = m.provider AND u.model = m.model AND u.service_tier = m.service_tier);
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.forget_unpriced_model_alerts() IS 'Trigger: forgets the announcement of the models that have no unpriced calls left in the rollups, so that a relapse is announced again.';

CREATE TRIGGER tg_unpriced_hourly__announce_new_models
  AFTER INSERT ON ai_cost_internal.unpriced_hourly REFERENCING NEW TABLE AS added_hours
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.announce_unpriced_models();

-- A trigger with transition tables handles one event: the deletes have their
-- own, and a TRUNCATE (which has no transition table) another.
CREATE TRIGGER tg_unpriced_hourly__forget_priced_models
  AFTER DELETE ON ai_cost_internal.unpriced_hourly REFERENCING OLD TABLE AS removed_hours
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.forget_unpriced_model_alerts();

CREATE TRIGGER tg_unpriced_hourly__forget_all_models
  AFTER TRUNCATE ON ai_cost_internal.unpriced_hourly
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.forget_unpriced_model_alerts();
