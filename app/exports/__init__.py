"""Extracts of the service's records for national data sets (docs/domain/mhsds-extract.md)."""
