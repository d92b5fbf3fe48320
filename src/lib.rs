//! topod
pub mod api;
pub mod config;
pub mod control;
pub mod model;
pub mod overlay;
