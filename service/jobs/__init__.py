"""Background jobs in Postgres: a queue (`queue`), what each kind does (`handlers`), and the
worker that runs them (`worker`)."""
