"""SQLAlchemy queries of the registry service; they never commit."""
