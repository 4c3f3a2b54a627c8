-- Key kinds: 'tenant' (every key until now: writes any device of its tenant, uses the tenant API),
-- 'device' (writes only the readings of `device`, nothing else) and 'provision' (only exchanges a
-- new device's id for that device's own key, once per device: POST /api/v1/provision).
ALTER TABLE api_keys ADD COLUMN kind text NOT NULL DEFAULT 'tenant';
ALTER TABLE api_keys ADD COLUMN device text;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind CHECK (kind IN ('tenant', 'device', 'provision'));
ALTER TABLE api_keys ADD CONSTRAINT api_keys_device CHECK ((kind = 'device') = (device IS NOT NULL));
CREATE INDEX api_keys_device ON api_keys (tenant, device) WHERE device IS NOT NULL;
