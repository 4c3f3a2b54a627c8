-- Message routes (decision 0610): a tenant's filter over its readings and a destination.
-- consumed_seq is the route's durable position in the telemetry stream: the last stream sequence
-- already turned into batches, written in the same transaction as those batches.
CREATE TABLE routes (
  id               uuid        PRIMARY KEY,
  tenant           text        NOT NULL,
  name             text        NOT NULL,
  state            text        NOT NULL DEFAULT 'active',
  filter           jsonb       NOT NULL,
  destination      jsonb       NOT NULL,   -- without the secret
  secret_encrypted text,                   -- webhook signing secret, AES-256-GCM like channels
  consumed_seq     bigint      NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT routes_state CHECK (state IN ('active', 'paused')),
  CONSTRAINT routes_name UNIQUE (tenant, name)
);

-- Batches of matching readings: pending ones wait for delivery in order (n), failed ones are the
-- route's failed list (replay sets them pending again). A batch's id is its delivery id.
CREATE TABLE route_batches (
  id              uuid        PRIMARY KEY,
  n               bigint      GENERATED ALWAYS AS IDENTITY,
  route_id        uuid        NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
  first_seq       bigint      NOT NULL,
  last_seq        bigint      NOT NULL,
  readings        jsonb       NOT NULL,
  count           integer     NOT NULL,
  status          text        NOT NULL DEFAULT 'pending',
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  failed_at       timestamptz,
  CONSTRAINT route_batches_status CHECK (status IN ('pending', 'failed'))
);
CREATE INDEX route_batches_route ON route_batches (route_id, status, n);
