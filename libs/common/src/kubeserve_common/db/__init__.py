"""Async SQLAlchemy: engines per service schema, unit of work, repositories, migrations."""
