"""Storage: the SQLAlchemy engine, tenant-scoped transactions and migrations."""
