//! Well-known DNS-over-HTTPS endpoints (placeholder, filled by the DNS issue work).
