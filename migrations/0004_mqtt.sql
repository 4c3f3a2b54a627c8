-- MQTT: nats-server checks an MQTT device's password (its API key) against this bcrypt hash of the
-- key (nats-server understands bcrypt, not SHA-256). NULL for keys made before this migration
-- (the key itself was never kept): create a new key for MQTT devices.
ALTER TABLE api_keys ADD COLUMN mqtt_hash text;
