"""SQLAlchemy queries of the registry service; they never commit, and every read of a
tenant-owned row starts from `for_owner()`."""
