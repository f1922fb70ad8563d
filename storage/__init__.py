"""Persistence shared by the engine and the intelligence engines: SQLAlchemy base, engines, migrations."""
