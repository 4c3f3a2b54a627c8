-- Message routes send first (decision 0611): a take records only the range it is about to send
-- (consumed_seq, inflight_to]; its batches are formed again from that range after a crash, with the
-- same ids. Batches are stored only when a first attempt fails (retries, the failed list).
ALTER TABLE routes ADD COLUMN inflight_to bigint;
-- json keeps the text as written: a stored batch's body is the same bytes as its first attempt's.
ALTER TABLE route_batches ALTER COLUMN readings TYPE json USING readings::json;
