"""The post-event report: built from the log, laid out as tables, rendered as HTML, XLSX, CSV, JSON."""
