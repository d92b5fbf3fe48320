//! topod
pub mod api;
pub mod cli;
pub mod config;
pub mod control;
pub mod model;
pub mod overlay;
