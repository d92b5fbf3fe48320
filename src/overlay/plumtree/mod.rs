//! Plumtree (placeholder).
