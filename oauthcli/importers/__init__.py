"""``oauthcli import``: registry files written from an OpenAPI document or a curl command.

Each importer turns its input into a :class:`~oauthcli.importers.write.Plan` (the files
to write, as data, and the warnings to show) and never touches the disk itself;
:mod:`oauthcli.importers.write` dumps a plan as YAML and writes it, refusing to replace
a file unless asked. Credentials never reach a plan: they become ``${env:…}``
placeholders.
"""
