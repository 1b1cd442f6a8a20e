"""The record store: one folder per job under the state dir, its record, claims of names, and
queries over the records."""
