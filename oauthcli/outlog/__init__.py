"""The outbound log (SPEC §7, docs/outbound-log.md): one JSON line per call oauthcli makes.

:mod:`oauthcli.outlog.place` is where the log is and the names of its files, shared by
the writer and the reader.
"""
