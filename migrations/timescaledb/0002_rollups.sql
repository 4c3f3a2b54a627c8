-- TimescaleDB only: the 1-minute rollups become a hypertable too (its key includes the bucket).
SELECT create_hypertable('readings_1m', by_range('bucket', INTERVAL '7 days'), if_not_exists => TRUE, migrate_data => TRUE);
