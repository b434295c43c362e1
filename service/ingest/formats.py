"""The export formats ingest reads, in the order a folder is ingested (people before the
records and ratings that name them). A module of their own, light enough for the CLI's
--help to list them without importing the importers."""

FORMATS = ("people", "records", "ratings")
