"""Warden's side-by-side benchmark against its peers (issue #11). See bench/README.md."""
