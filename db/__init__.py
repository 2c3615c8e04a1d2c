"""The SQL layer: settings, sessions, tables, queries and migrations.

The bottom of the import graph: `happysad -> scheduler -> worker -> trainer -> db`.
"""
