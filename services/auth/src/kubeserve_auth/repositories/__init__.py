"""SQLAlchemy queries of the auth service; they never commit."""
