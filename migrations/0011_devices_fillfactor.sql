-- The writer updates a device's row (last seen, position) in every batch that holds its readings.
-- Room on each page lets that update be a HOT update (same page, no new devices_pkey entry, less
-- WAL) instead of a new tuple elsewhere plus an index insertion (decision 0575). Only the storage
-- parameter changes: no rewrite; existing pages gain the room as vacuum frees their old versions.
ALTER TABLE devices SET (fillfactor = 50);
