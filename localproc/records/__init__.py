"""The record store: one folder per job under the state dir (layout), its record (record,
status, checks, durable), claims of names (claims), the store over them (store), and queries
over the records (listing)."""
