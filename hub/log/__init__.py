"""The event log and what is kept beside it: snapshots of the fold, backups."""
