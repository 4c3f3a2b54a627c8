-- Alerts: rollups, rules, rule state, alerts, notification channels and the delivery outbox.

-- 1-minute rollups per (tenant, device, metric), maintained by the writer in the same transaction
-- as the readings, from the rows that transaction actually inserted: each reading counts once,
-- whatever the duplicates and replays.
CREATE TABLE readings_1m (
  tenant    text             NOT NULL,
  device_id text             NOT NULL,
  metric    text             NOT NULL,
  bucket    timestamptz      NOT NULL,
  count     bigint           NOT NULL,
  sum       double precision NOT NULL,
  sum_sq    double precision NOT NULL,
  min       double precision NOT NULL,
  max       double precision NOT NULL,
  CONSTRAINT readings_1m_pkey PRIMARY KEY (tenant, device_id, metric, bucket)
);

CREATE TABLE rules (
  id               uuid        PRIMARY KEY,
  tenant           text        NOT NULL,
  name             text        NOT NULL,
  enabled          boolean     NOT NULL DEFAULT true,
  severity         text        NOT NULL,
  metric           text,
  devices          text[],                 -- NULL: every device of the tenant
  condition        jsonb       NOT NULL,   -- validated by the rule schema (src/core/rules)
  for_seconds      integer     NOT NULL DEFAULT 0,
  cooldown_seconds integer     NOT NULL DEFAULT 900,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rules_tenant ON rules (tenant) WHERE enabled;

-- Evaluation state per (rule, device[, metric]), so `for`, hysteresis, cooldown and geofence
-- side survive restarts. Times are reading (event) times, which makes evaluation replayable.
CREATE TABLE rule_state (
  rule_id       uuid             NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  device_id     text             NOT NULL,
  active        boolean          NOT NULL DEFAULT false,
  active_since  timestamptz,
  last_alert_at timestamptz,
  last_value    double precision,
  last_ts       timestamptz,
  inside        boolean,
  updated_at    timestamptz      NOT NULL DEFAULT now(),
  CONSTRAINT rule_state_pkey PRIMARY KEY (rule_id, device_id)
);

-- An alert's id is derived from (rule, device, triggering reading time), so the same trigger,
-- evaluated again or replayed, can never make a second alert.
CREATE TABLE alerts (
  id               uuid             PRIMARY KEY,
  tenant           text             NOT NULL,
  rule_id          uuid             NOT NULL,
  rule_name        text             NOT NULL,
  device_id        text             NOT NULL,
  metric           text,
  severity         text             NOT NULL,
  kind             text             NOT NULL,
  status           text             NOT NULL DEFAULT 'open',
  value            double precision,
  message          text             NOT NULL,
  details          jsonb            NOT NULL DEFAULT '{}',
  triggered_at     timestamptz      NOT NULL,
  trigger_event_id uuid,
  created_at       timestamptz      NOT NULL DEFAULT now(),
  acknowledged_at  timestamptz,
  resolved_at      timestamptz,
  resolution       text,
  CONSTRAINT alerts_status CHECK (status IN ('open', 'acknowledged', 'resolved'))
);
CREATE INDEX alerts_tenant_created ON alerts (tenant, created_at DESC, id DESC);
CREATE INDEX alerts_rule_device ON alerts (rule_id, device_id, triggered_at DESC);

-- Where a tenant's alerts go. Secrets (HMAC key, API key) are stored encrypted (AES-256-GCM).
CREATE TABLE channels (
  id               uuid        PRIMARY KEY,
  tenant           text        NOT NULL,
  name             text        NOT NULL,
  kind             text        NOT NULL,   -- 'webhook' | 'hub'
  url              text        NOT NULL,
  secret_encrypted text,
  enabled          boolean     NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT channels_kind CHECK (kind IN ('webhook', 'hub'))
);
CREATE INDEX channels_tenant ON channels (tenant) WHERE enabled;

-- The outbox: written in the same transaction as the alert. One row per (alert, destination);
-- its id is the delivery id receivers use to deduplicate, constant across retries.
-- channel_id NULL with kind 'nats' is the alert event on alerts.v1.{tenant}.
CREATE TABLE outbox (
  id              uuid        PRIMARY KEY,
  tenant          text        NOT NULL,
  alert_id        uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
  channel_id      uuid        REFERENCES channels (id) ON DELETE CASCADE,
  kind            text        NOT NULL,   -- 'nats' | 'webhook' | 'hub'
  event           text        NOT NULL,   -- 'alert.opened', 'alert.resolved', ...
  payload         jsonb       NOT NULL,
  status          text        NOT NULL DEFAULT 'pending',
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  CONSTRAINT outbox_status CHECK (status IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_channel ON outbox (channel_id, created_at DESC);

CREATE TABLE delivery_attempts (
  delivery_id uuid        NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
  attempt     integer     NOT NULL,
  at          timestamptz NOT NULL DEFAULT now(),
  status_code integer,
  error       text,
  duration_ms integer     NOT NULL,
  CONSTRAINT delivery_attempts_pkey PRIMARY KEY (delivery_id, attempt)
);
