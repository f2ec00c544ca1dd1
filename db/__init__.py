"""The results database: ORM tables, migrations, the write store and the read queries."""
