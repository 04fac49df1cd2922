"""SQLAlchemy queries of the deployer service; they never commit."""
