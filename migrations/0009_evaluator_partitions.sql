-- Several evaluator processes (decision 0550): one row per evaluation partition. `epoch` grows by
-- one with each claim; a holder writes its outcomes only while the epoch is still the one its
-- claim got (an old holder that lost its lease is fenced out). `last_seq` is the stream sequence
-- of the last committed-batch event whose outcome was written: an event at or below it is not
-- evaluated again after a handover.
CREATE TABLE evaluator_partitions (
  name       text PRIMARY KEY,
  epoch      bigint NOT NULL DEFAULT 0,
  holder     text,
  last_seq   bigint NOT NULL DEFAULT 0,
  claimed_at timestamptz NOT NULL DEFAULT now()
);
