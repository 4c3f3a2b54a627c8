-- Late data (decision 0460): a rule may override the server's lateness bound, and metric no_data
-- rules remember when a reading of their metric last *arrived* (not its event time), so a buffered
-- upload of old points neither fires nor flaps them.
ALTER TABLE rules ADD COLUMN max_lateness_seconds integer;   -- NULL: TELEMETRY_ALERT_MAX_LATENESS
ALTER TABLE rule_state ADD COLUMN last_arrival timestamptz;
