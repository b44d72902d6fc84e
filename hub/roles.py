"""Every role, and every set of roles the hub grants something to, named once.

Commands declare their roles at registration (`hub.core.commands`); HTTP endpoints name one of the
sets below. A new reader of the report, or a role freed from the rate limit, is one edit here.
"""

from __future__ import annotations

ROLES = ("admin", "moderator", "chair", "technician", "registrar", "agency", "viewer")
ANY = frozenset(ROLES)
SITE_BOUND = frozenset({"technician", "registrar"})  # a token of these roles names its site
AGENCY_BOUND = frozenset({"agency"})  # and of this one, its agency
UNLIMITED = frozenset({"admin", "moderator", "chair"})  # not rate-limited: imports, integrations, the console
REPORT_READERS = frozenset({"admin", "moderator", "chair"})
DOCUMENT_READERS = frozenset({"admin", "moderator"})  # the official letters and the summary report (.docx)
IMPORTERS = frozenset({"admin", "moderator"})  # questions collected before the day, as CSV or XLSX
DEADLINE_READERS = frozenset({"admin", "moderator", "chair", "agency"})
METRICS_READERS = frozenset({"admin", "viewer"})
