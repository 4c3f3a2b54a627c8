-- TimescaleDB only (applied when the extension is present). Requires TimescaleDB >= 2.13.
-- The primary key already includes the time column, as hypertables require.
SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);

ALTER TABLE readings SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'tenant, device_id',
  timescaledb.compress_orderby = 'ts DESC, event_id'
);
