"""SQLAlchemy queries of the gateway service; they never commit."""
