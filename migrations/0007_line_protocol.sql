-- A tenant's own line-protocol mapping (docs/protocols/influx-line-protocol.md): an object with
-- any of device_tags, bare_measurements, lat_fields, lon_fields (arrays of names); NULL or an
-- absent key follows the server's TELEMETRY_LP_* settings.
ALTER TABLE tenants ADD COLUMN line_protocol jsonb;
ALTER TABLE tenants ADD CONSTRAINT tenants_line_protocol CHECK (jsonb_typeof(line_protocol) = 'object');
