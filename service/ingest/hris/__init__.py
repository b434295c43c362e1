"""HRIS exports (Workday, BambooHR, Rippling, HiBob, Personio) read through a column mapping
into people.csv's meaning, then stored by service.ingest.people like people.csv itself.

mapping.py: the mapping file's typed model and where shipped mappings are found;
export.py: an export's rows turned into PersonRow values; importer.py: the import itself
(byte checks, the ingest lock, the one people writer, the audit event).
"""
