"""SQLAlchemy queries of the builder service; they never commit."""
