-- TimescaleDB only: the 1-minute rollups (7-day chunks, see 0002_rollups) are compressed like the
-- readings, one segment per series; the compression and retention policies are set from the config.
ALTER TABLE readings_1m SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'tenant, device_id, metric',
  timescaledb.compress_orderby = 'bucket DESC'
);
