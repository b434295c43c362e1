"""Background jobs on procrastinate: what each kind does (`handlers`), queueing one and
reading it back (`queue`, `accept`), procrastinate's task per kind and the retry rule
(`tasks`, `runner`), the periodic upkeep (`periodic`), and the worker that runs them
through database outages (`worker`)."""
