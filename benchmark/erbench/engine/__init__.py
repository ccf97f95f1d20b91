"""The evaluation engine: plan -> executor -> worker -> store -> tables.

* ``plan``      -- a protocol's cells for one submission, each with a key (a hash of everything that
  determines its rows) and an expected cost; shards are deterministic slices of a plan;
* ``executors`` -- *where* cells run: in this process, in a pool of worker processes, or as Ray tasks;
* ``worker``    -- *what* a cell computes: one cell of one submission -> its per-image rows;
* ``store``     -- committed cells as Parquet parts (atomic rename, checksum in the name), a lock;
* ``tables``    -- ``summary.parquet`` and ``per_image.parquet`` derived from the committed parts.
"""
