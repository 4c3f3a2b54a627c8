-- Foundation schema. Works on plain PostgreSQL; on TimescaleDB the timescaledb/ migrations
-- turn readings into a hypertable afterwards.

-- One row per event. The key holds the event id, and every other column of the key is derived
-- from the same identifying fields, so one event can never make two rows. Leading with
-- (tenant, device_id, ts) keeps inserts append-mostly per device and serves per-device range
-- queries, so no second index is needed. A record's location is stored with its metrics:
-- a position is a reading.
CREATE TABLE readings (
  tenant      text             NOT NULL,
  device_id   text             NOT NULL,
  ts          timestamptz      NOT NULL,
  event_id    uuid             NOT NULL,
  lat         double precision,
  lon         double precision,
  metrics     jsonb,
  attributes  jsonb,
  received_at timestamptz      NOT NULL,
  CONSTRAINT readings_pkey PRIMARY KEY (tenant, device_id, ts, event_id),
  CONSTRAINT readings_location_pair CHECK ((lat IS NULL) = (lon IS NULL))
);

-- Last known state of each device, maintained by the writer in the same transaction as its rows.
CREATE TABLE devices (
  tenant           text             NOT NULL,
  device_id        text             NOT NULL,
  first_seen       timestamptz      NOT NULL,
  last_seen        timestamptz      NOT NULL,
  last_received_at timestamptz      NOT NULL,
  last_lat         double precision,
  last_lon         double precision,
  last_location_at timestamptz,
  CONSTRAINT devices_pkey PRIMARY KEY (tenant, device_id)
);

-- Messages the writer can never store (undecodable, or rejected by the database as data).
-- They are terminated on the broker and kept here with the reason.
CREATE TABLE quarantine (
  id          bigserial   PRIMARY KEY,
  source      text        NOT NULL,
  subject     text,
  stream_seq  bigint,
  reason      text        NOT NULL,
  payload     text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT quarantine_once UNIQUE (source, stream_seq)
);

CREATE TABLE telemetry_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
