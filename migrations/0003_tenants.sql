-- Tenants, their API keys and their registered devices.

-- Limits left NULL follow the server's defaults (TELEMETRY_TENANT_RATE, TELEMETRY_MAX_DEVICES, ...),
-- so changing a default reaches every tenant that has no limit of its own.
CREATE TABLE tenants (
  id                      text             PRIMARY KEY,
  name                    text             NOT NULL,
  status                  text             NOT NULL DEFAULT 'active',
  suspended_reason        text,
  device_policy           text             NOT NULL DEFAULT 'auto',
  max_devices             integer,
  rate_per_second         double precision,
  burst                   integer,
  device_rate_per_second  double precision,
  device_burst            integer,
  max_records_per_request integer,
  created_at              timestamptz      NOT NULL DEFAULT now(),
  CONSTRAINT tenants_id CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  CONSTRAINT tenants_status CHECK (status IN ('active', 'suspended')),
  CONSTRAINT tenants_suspended_reason CHECK ((status = 'suspended') = (suspended_reason IS NOT NULL)),
  CONSTRAINT tenants_device_policy CHECK (device_policy IN ('auto', 'reject')),
  CONSTRAINT tenants_limits CHECK (max_devices > 0 AND rate_per_second > 0 AND burst > 0 AND device_rate_per_second > 0
                                   AND device_burst > 0 AND max_records_per_request > 0)
);

-- A key is stored as the SHA-256 (hex) of the whole key, never as itself. `prefix` finds the row
-- (it is part of the key: 'tk_' + prefix + secret); the hash is then compared in constant time.
CREATE TABLE api_keys (
  id           uuid        PRIMARY KEY,
  tenant       text        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  prefix       text        NOT NULL,
  hash         text        NOT NULL,
  name         text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz,
  last_used_at timestamptz,
  CONSTRAINT api_keys_prefix UNIQUE (prefix)
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

-- Devices registered ahead of their first reading (device_policy 'reject' accepts only known
-- devices: these and those in `devices`).
CREATE TABLE device_registrations (
  tenant     text        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  device_id  text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT device_registrations_pkey PRIMARY KEY (tenant, device_id)
);
