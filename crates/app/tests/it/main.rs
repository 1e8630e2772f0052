//! The application layer against the real stores (SQLite, PostgreSQL), the real read models and the
//! Antom simulator over loopback HTTP.
