"""The cluster: with `queue:` in the configuration, collections run as Celery tasks on any
number of `annexa worker` processes that share one PostgreSQL. The store is the only shared
state: a unit's lock, its runs and their seals are all there, so whoever enqueues a unit waits
for its seal by reading the store, and no result backend is needed."""
