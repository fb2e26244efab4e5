"""Gaze data interchange: import public gaze data sets and plain CSV, export and re-import bundles.

Parsers (``egd_cxr``, ``reflacx``, ``plain_csv``, ``bundle``) turn files into ``SessionRecord``
objects or line-numbered ``RowError`` lists without touching the database; ``importer`` writes
records in one transaction; ``exporter`` writes bundles that ``bundle`` reads back exactly.
Formats and columns: docs/gaze-interchange.md.
"""
