//! DNS tunnelling detection (placeholder, filled by the DNS issue work).
